"""Model files from elsewhere: loading one never runs its code unless the suite trusts it, and a
bad file is judged (named as the user wrote it) before it is copied or hashed whole."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import yaml

from bench.run.session import run_suite
from bench.suite.spec import SpecError, load_suite
from tests.conftest import ROOT

DEVICES = ROOT / "devices"


@pytest.fixture(scope="module")
def lambda_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A real tf-keras model whose Lambda layer creates ``marker`` when run (as when a loader
    rebuilds the model), saved as .h5 and .keras; returns (h5, keras, marker)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras as keras

    folder = tmp_path_factory.mktemp("lambda")
    marker = folder / "code-ran"
    touch = eval(f"lambda t: (__import__('pathlib').Path({str(marker)!r}).touch(), t)[1]")
    inputs = keras.layers.Input((4,))
    hidden = keras.layers.Lambda(touch, name="sneaky")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    with warnings.catch_warnings():  # "HDF5 is a legacy format": that is the point
        warnings.simplefilter("ignore", UserWarning)
        model.save(folder / "sneaky.h5")
    model.save(folder / "sneaky.keras")
    marker.unlink()  # building the model ran the lambda once
    return folder / "sneaky.h5", folder / "sneaky.keras", marker


def _suite(tmp_path: Path, name: str, models: list[dict]) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "models": models, "devices": ["host-litert"],
                                    "settings": {"repeats": 3, "warmup": 1}}))
    return path


def test_a_file_with_code_is_refused_unless_the_suite_trusts_it(
        tmp_path: Path, lambda_models: tuple[Path, Path, Path]) -> None:
    h5, dot_keras, marker = lambda_models
    suite = _suite(tmp_path, "untrusted", [{"id": "h5", "path": str(h5)},
                                           {"id": "keras", "path": str(dot_keras)}])
    run = run_suite(load_suite(suite), tmp_path / "results", devices_dirs=[DEVICES])
    assert not marker.exists(), "loading the model ran its Lambda layer"
    records = {r.model: r for r in run.records()}
    for model, path in (("h5", h5), ("keras", dot_keras)):
        assert records[model].status == "failed"
        message = records[model].error["message"]
        assert f"model file {path} holds code that would run when it is loaded" in message
        assert "Lambda layer 'sneaky'" in message and "trust_code: true" in message

    trusted = _suite(tmp_path, "trusted", [{"id": "h5", "path": str(h5), "trust_code": True}])
    record = run_suite(load_suite(trusted), tmp_path / "results",
                       devices_dirs=[DEVICES]).records()[0]
    assert record.status == "ok", record.error
    assert marker.exists()  # trusted: the file's code ran, as the suite allowed
    assert record.details["build"]["model"]["trust_code"] is True  # and the record says so


@pytest.mark.parametrize(("entry", "message"), [
    ({"builder": "har_mlp", "trust_code": True}, "`trust_code` applies to a model file"),
    ({"path": "m.h5", "trust_code": "yes"}, "models[0].trust_code: Input should be a valid "
                                            "boolean"),
])
def test_trust_code_is_a_boolean_for_a_model_file(tmp_path: Path, entry: dict,
                                                  message: str) -> None:
    suite = _suite(tmp_path, "s", [{"id": "m", **entry}])
    with pytest.raises(SpecError, match="models\\[0\\]") as e:
        load_suite(suite)
    assert message in str(e.value)


def test_bad_model_files_are_judged_before_the_cache_and_named_as_given(tmp_path: Path) -> None:
    cache = Path(os.environ["EDGEBENCH_CACHE"])
    files = {"corrupt": ("corrupt.tflite", b"\x10\x00\x00\x00TFL3" + b"\xff" * 64),
             "junk": ("junk.tflite", bytes(2 << 20)),
             "junk_h5": ("junk.h5", b"not HDF5 at all" * 100)}
    for filename, data in files.values():
        (tmp_path / filename).write_bytes(data)
    big = tmp_path / "big.tflite"
    with big.open("wb") as f:  # 300 MiB, sparse: never read
        f.truncate(300 << 20)
    models = [{"id": m, "path": str(tmp_path / filename)} for m, (filename, _) in files.items()]
    suite = _suite(tmp_path, "junk", [*models, {"id": "big", "path": str(big)}])
    run = run_suite(load_suite(suite), tmp_path / "results", devices_dirs=[DEVICES])
    errors = {r.model: r.error["message"] for r in run.records()}
    assert all(r.status == "failed" for r in run.records())
    assert errors["corrupt"].startswith(f"{tmp_path / 'corrupt.tflite'} is not a valid .tflite")
    assert f"{tmp_path / 'junk.tflite'} is not a valid .tflite flatbuffer: file identifier" \
        in errors["junk"]
    assert f"model file {tmp_path / 'junk.h5'} is not an HDF5 file" in errors["junk_h5"]
    assert errors["big"] == (f"model file {big} is 300 MiB; model files up to 256 MiB are "
                             "accepted")
    assert not any(str(cache) in message for message in errors.values())
    assert not (cache / "artifacts").exists()  # nothing was copied into the cache
