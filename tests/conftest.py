"""Shared fixtures: an isolated cache per test and a tiny real .tflite model.

(MLPerf Tiny reference models from ../shared: ``tests.tflite_models.mlperf_model``.)"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bench.devices.device import load_device
from tests import xdist_groups
from tests.tflite_models import mlperf_model

ROOT = Path(__file__).resolve().parents[1]
MCU_DEVICE = ROOT / "devices" / "mcu-256kb-80mhz.yaml"
# Ray reads this when it is first imported, by whichever test module comes first: with it, every
# Ray node of the tests (and its traffic) stays on 127.0.0.1, not the machine's interface.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` (``make test``): whole modules, the longest first
    (:mod:`tests.xdist_groups`)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    return xdist_groups.scheduler(config, log)


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The real-time modules' tests marked ``realtime``; on a pytest-xdist worker, the longest
    modules first (:mod:`tests.xdist_groups`)."""
    xdist_groups.mark_realtime(items)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        xdist_groups.first_the_longest(items)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own cache (tests that share one ask for ``shared_cache``)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("EDGEBENCH_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def firmware_cache(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """One firmware cache (TFLite Micro libraries, firmware builds) for the whole session and
    its xdist workers: builds are content-addressed and locked, so the tests that build for a
    core share one library build instead of compiling TFLite Micro each (minutes, cold)."""
    base = tmp_path_factory.getbasetemp()
    return (base if worker_id == "master" else base.parent) / "edgebench-firmware"


@pytest.fixture
def tests_importable_in_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers start with ``-P`` (no working directory on ``sys.path``): the repository root on
    ``PYTHONPATH`` lets them import ``tests.worker_targets``."""
    kept = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), kept])))


@pytest.fixture
def ad01() -> Path:
    """MLPerf Tiny's anomaly-detection reference model (skips without ``../shared``)."""
    return mlperf_model("ad01_int8.tflite")


@pytest.fixture
def device() -> dict:
    """The small MCU device file (256 KB RAM, 80 MHz) as a dict, for runner requests."""
    return load_device(MCU_DEVICE).model_dump(mode="json")


@pytest.fixture(scope="session")
def tiny_tflite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real float32 .tflite of a small Dense model (4 → 8 → 3 softmax), batch 1."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    for layer in model.layers:  # non-zero biases: the converter drops all-zero ones
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel, bias + 0.1])
    fn = tf.function(lambda x: model(x)).get_concrete_function(tf.TensorSpec([1, 4], tf.float32))
    data = tf.lite.TFLiteConverter.from_concrete_functions([fn], model).convert()
    path = tmp_path_factory.mktemp("models") / "tiny.tflite"
    path.write_bytes(data)
    return path

