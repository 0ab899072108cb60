"""Careless values caught where the file is read: seeds, batch sizes and sample counts out of
range, device figures like 1e30, a model path that is a directory or a device, and ``list``
agreeing with ``run`` about a suite that plans no cell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.devices.device import load_device
from bench.models.train import ModelFileError, load_keras_file
from bench.run.build import judge_model_file
from bench.suite.spec import load_suite
from tests.conftest import ROOT
from tests.test_untrusted_files import BOARD, SUITE, error_of, problems, write

MODEL = SUITE["models"][0]


@pytest.mark.parametrize(("model", "field"), [
    ({**MODEL, "train": {"seed": -1}}, "models[0].train.seed"),
    ({**MODEL, "train": {"seed": 2**32}}, "models[0].train.seed"),
    ({**MODEL, "train": {"batch_size": 10**9}}, "models[0].train.batch_size"),
    ({**MODEL, "train": {"epochs": 10**7}}, "models[0].train.epochs"),
    ({**MODEL, "dataset": {"name": "har_synthetic", "seed": 2**63}}, "models[0].dataset.seed"),
    ({**MODEL, "dataset": {"name": "har_synthetic", "params": {"samples": 10**10}}},
     "models[0].dataset.params.samples"),
])
def test_out_of_range_numbers_are_named_at_load(tmp_path: Path, model: dict, field: str) -> None:
    found = problems(error_of(load_suite, write(tmp_path, {**SUITE, "models": [model]})))
    assert field in found, found


@pytest.mark.parametrize(("step", "field"), [
    ({"prune": {"batch_size": 10**6}}, "variants[0].steps[0].prune.batch_size"),
    ({"distill": {"teacher": "m", "epochs": 0}}, "variants[0].steps[0].distill.epochs"),
    ({"quantize": {"mode": "int8", "calibration": {"samples": 10**9}}},
     "variants[0].steps[0].quantize.calibration.samples"),
])
def test_step_numbers_out_of_range_are_named_at_load(tmp_path: Path, step: dict,
                                                     field: str) -> None:
    suite = {**SUITE, "variants": [{"id": "v", "steps": [step]}]}
    found = problems(error_of(load_suite, write(tmp_path, suite)))
    assert field in found, found


@pytest.mark.parametrize(("change", "field"), [
    ({"clock_mhz": 1e30}, "clock_mhz"),
    ({"clock_mhz": 1e-300}, "clock_mhz"),
    ({"memory": {"flash_kb": 1e30, "ram_kb": 256}}, "memory.flash_kb"),
    ({"memory": {"flash_kb": 1024, "ram_kb": 1e-9}}, "memory.ram_kb"),
    ({"power": {"active_mw": 1e30}}, "power.active_mw"),
    ({"power": {"active_mw": 20, "voltage_v": 1e30}}, "power.voltage_v"),
])
def test_device_figures_have_bounds(tmp_path: Path, change: dict, field: str) -> None:
    found = problems(error_of(load_device, write(tmp_path, {**BOARD, **change}, "b.yaml")))
    assert field in found and ("less than" in found[field] or "greater than" in found[field])


def test_the_bounds_take_every_shipped_device() -> None:
    for path in sorted((ROOT / "devices").glob("*.yaml")):
        load_device(path)


@pytest.mark.parametrize("kind", ["directory", "link to /dev/zero", "missing", "dangling"])
def test_a_model_path_that_is_not_a_file_says_what_it_is(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "m.tflite"
    if kind == "directory":
        path.mkdir()
    elif kind == "link to /dev/zero":
        path.symlink_to("/dev/zero")
    elif kind == "dangling":
        path.symlink_to(tmp_path / "gone")
    expected = {"directory": "is a directory", "link to /dev/zero":
                "is a character device (a symbolic link to /dev/zero)",
                "missing": "does not exist", "dangling": "a symbolic link to nothing"}[kind]
    with pytest.raises((ValueError, FileNotFoundError), match=expected.replace("(", r"\(")
                       .replace(")", r"\)")):
        judge_model_file(path)
    keras = tmp_path / "m.keras"
    keras.symlink_to(path)
    with pytest.raises(ModelFileError, match="model file"):
        load_keras_file(keras)


def test_list_refuses_a_suite_that_run_refuses(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({**SUITE, "exclude": [{"model": "*"}]}))
    out = subprocess.run([sys.executable, "-m", "bench", "list", str(suite)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert "no cell left to run" in out.stderr
