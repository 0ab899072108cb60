"""End to end through the real CLI and session: real training, conversion, LiteRT and TFLM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bench.run.session import run_suite
from bench.suite.spec import load_suite
from tests.conftest import ROOT

DEVICES = ROOT / "devices"
EDGEBENCH = [sys.executable, "-m", "bench"]


def write_suite(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def cli(*args: str, env: dict[str, str] | None = None, check: bool = True
        ) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([*EDGEBENCH, *args], capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, cwd=ROOT, timeout=900)
    if check and out.returncode != 0:
        raise AssertionError(f"edgebench {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out


@pytest.mark.slow
def test_har_suite_end_to_end_then_warm(tmp_path: Path) -> None:
    suite_file = write_suite(tmp_path, {
        "name": "har",
        "models": [{"id": "har", "builder": "har_mlp",
                    "dataset": {"name": "har_synthetic", "params": {"samples": 1200}},
                    "train": {"epochs": 3}}],
        "variants": [{"id": "int8", "steps": [{"quantize": {"mode": "int8",
                                                             "calibration": {"samples": 50}}}]},
                     {"id": "fp32"}, {"id": "fp16", "steps": [{"quantize": {"mode": "fp16"}}]}],
        "devices": ["host-litert", "tflm-reference"],
        "constraints": {"flash_kb": {"max": 512}, "params": {"max": 100},
                        "accuracy": {"min_delta_vs": "fp32", "max_loss": 0.5}},
        "settings": {"repeats": 20, "warmup": 2},
    })
    suite = load_suite(suite_file)
    run = run_suite(suite, tmp_path / "results", devices_dirs=[DEVICES])
    records = {r.cell_id: r for r in run.records()}
    assert list(records) == [f"har/{v}@{d}" for v in ("fp32", "int8", "fp16")
                             for d in ("host-litert", "tflm-reference")]
    skipped = records.pop("har/fp16@tflm-reference")
    assert skipped.status == "skipped" and "float16" in skipped.error["message"]
    assert skipped.metrics["model_size"].value > 0  # what was measured is kept
    for r in records.values():
        assert r.status == "ok", r.error
        assert 0.3 < r.value("accuracy") <= 1.0
        assert r.metrics["latency_p50"].unit == "ms"
        assert r.constraints["flash_kb"].passed is True
        assert r.constraints["params"].passed is False  # 12k params > 100: the check can fail
    int8 = records["har/int8@tflm-reference"]
    assert int8.metrics["accuracy"].method == "tflm"
    assert int8.metrics["arena_used"].value > 0 and int8.metrics["arena_min"].value > 0
    calibration = int8.details["build"]["steps"]["calibration"]
    assert (calibration["split"], calibration["samples"]) == ("validation", 50)
    fp32 = records["har/fp32@tflm-reference"]
    assert int8.value("accuracy_delta") == pytest.approx(
        int8.value("accuracy") - fp32.value("accuracy"))
    assert int8.constraints["accuracy"].passed is True
    assert records["har/fp32@host-litert"].metrics["latency_p50"].method == "measured"
    # repeats 20 in each of settings.processes (default 3) worker processes, pooled
    assert records["har/fp32@host-litert"].value("latency_n") == 3 * 20
    assert records["har/int8@host-litert"].metrics["model_size"].value < \
        records["har/fp32@host-litert"].metrics["model_size"].value / 2

    # warm: nothing is trained, converted or evaluated again; latency is measured again
    rerun = run_suite(suite, tmp_path / "results", devices_dirs=[DEVICES])
    assert rerun.run_id != run.run_id
    for r in rerun.records():
        assert r.details["build"]["cached"] is True
        if r.status == "ok":
            assert r.details["evaluation_cached"] is True
            assert r.value("accuracy") == records.get(r.cell_id, r).value("accuracy")


def _crash_plugin(tmp_path: Path) -> dict[str, str]:
    """A third-party variant step, registered through a real entry point, that segfaults."""
    plugins = tmp_path / "plugins"
    dist = plugins / "edgebench_crashy-0.1.dist-info"
    dist.mkdir(parents=True)
    (plugins / "edgebench_crashy.py").write_text(
        "import ctypes\nfrom bench.variants.base import VariantStep\n"
        "def _apply(state, params):\n    ctypes.string_at(0)\n"
        "CRASH = VariantStep(name='crash', apply=_apply)\n")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: edgebench-crashy\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[edgebench.variants]\ncrash = edgebench_crashy:CRASH\n")
    return {"PYTHONPATH": str(plugins)}


def test_crash_and_corrupt_file_fail_their_cells_only(tmp_path: Path, tiny_tflite: Path) -> None:
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"\x00garbage, not a flatbuffer" * 10)
    suite_file = write_suite(tmp_path, {
        "name": "robust",
        "models": [{"id": "tiny", "path": str(tiny_tflite)},
                   {"id": "broken", "path": str(corrupt)}],
        "variants": [{"id": "fp32"}, {"id": "crashy", "steps": [{"crash": {}}]}],
        "devices": ["host-litert"],
        "settings": {"repeats": 5, "warmup": 1},
    })
    env = _crash_plugin(tmp_path)
    out = cli("run", str(suite_file), "--results", str(tmp_path / "results"), "-q",
              "--devices-dir", str(DEVICES), env=env, check=False)
    assert out.returncode == 1, out.stderr  # failed cells: the run says so in its exit status
    lines = (next((tmp_path / "results" / "robust").glob("*")) / "records.jsonl").read_text()
    records = {r["cell_id"]: r for r in map(json.loads, lines.splitlines())}
    assert records["tiny/fp32@host-litert"]["status"] == "ok"
    assert records["tiny/fp32@host-litert"]["metrics"]["params"]["value"] == 4 * 8 + 8 + 8 * 3 + 3
    crashed = records["tiny/crashy@host-litert"]
    assert crashed["status"] == "failed" and crashed["error"]["kind"] == "crashed"
    assert "SIGSEGV" in crashed["error"]["message"]
    broken = records["broken/fp32@host-litert"]
    assert broken["status"] == "failed"
    assert "not a valid .tflite" in broken["error"]["message"]
    assert "tiny/fp32@host-litert" in out.stdout and "SIGSEGV" in out.stdout


def test_malformed_suite_exits_nonzero_naming_file_and_field(tmp_path: Path) -> None:
    suite_file = write_suite(tmp_path, {"name": "bad", "models": [{"id": "m", "builder": "hvac"}],
                                        "devices": ["host-litert"]})
    out = cli("run", str(suite_file), check=False)
    assert out.returncode == 2
    assert f"{suite_file}: models[0].builder: unknown model builder 'hvac'" in out.stderr
    assert "did you mean 'hvac_lstm'" in out.stderr
    suite_file = write_suite(tmp_path, {"name": "bad", "models": [{"id": "m", "path": "x.tflite"}],
                                        "devices": ["host-litrt"]})
    out = cli("list", str(suite_file), check=False)
    assert out.returncode == 2
    assert "devices[0]: unknown device 'host-litrt'; did you mean 'host-litert'?" in out.stderr


def test_killed_run_resumes_without_duplicates(tmp_path: Path, tiny_tflite: Path) -> None:
    models = [{"id": f"m{i}", "path": str(tiny_tflite)} for i in range(4)]
    suite_file = write_suite(tmp_path, {"name": "resume", "models": models,
                                        "devices": ["host-litert", "tflm-reference"],
                                        "settings": {"repeats": 5, "warmup": 1}})
    results = tmp_path / "results"
    proc = subprocess.Popen([*EDGEBENCH, "run", str(suite_file), "--results", str(results), "-q",
                             "--devices-dir", str(DEVICES)], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    records_file = None
    while time.monotonic() < deadline:
        found = list(results.glob("resume/*/records.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 2:
            records_file = found[0]
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert records_file is not None, "the run wrote no records"
    before = len(records_file.read_text().splitlines())
    assert before < 8, "the run finished before it could be killed"

    cli("run", str(suite_file), "--results", str(results), "--resume", "-q",
        "--devices-dir", str(DEVICES))
    assert len(list(results.glob("resume/*"))) == 1  # the same run folder
    cells = [json.loads(x)["cell_id"] for x in records_file.read_text().splitlines()]
    assert len(cells) == 8 and len(set(cells)) == 8
    shown = cli("show", "--results", str(results)).stdout
    assert "m3/fp32@tflm-reference" in shown and "8 ok" in shown


@pytest.mark.slow
def test_hvac_lstm_int8_runs_in_tflm_and_int16x8_fails_with_the_reason(tmp_path: Path) -> None:
    suite_file = write_suite(tmp_path, {
        "name": "hvac",
        "models": [{"id": "hvac", "builder": "hvac_lstm",
                    "dataset": {"name": "hvac_building", "params": {"window_stride": 60}},
                    "train": {"epochs": 2}}],
        "variants": [{"id": "int8", "steps": [{"quantize": {"mode": "int8"}}]},
                     {"id": "int16x8", "steps": [{"quantize": {"mode": "int16x8"}}]}],
        "devices": ["tflm-reference", "host-tflite-runtime"],
        "constraints": {"mae": {"max": 5.0}},
        "settings": {"repeats": 3, "warmup": 1},
    })
    run = run_suite(load_suite(suite_file), tmp_path / "results", devices_dirs=[DEVICES])
    records = {r.cell_id: r for r in run.records()}
    int8 = records["hvac/int8@tflm-reference"]
    assert int8.status == "ok", int8.error
    assert 10_000 < int8.value("model_size") < 25_000
    assert 2_000 < int8.value("arena_used") < 16_000
    assert int8.metrics["mae"].unit == "°C" and int8.value("rmse") >= int8.value("mae")
    assert int8.constraints["mae"].passed is (int8.value("mae") <= 5.0)
    for device in ("tflm-reference", "host-tflite-runtime"):
        failed = records[f"hvac/int16x8@{device}"]
        assert failed.status == "failed" and failed.error["kind"] == "build"
        assert "16x8" in failed.error["message"] and "LSTM" in failed.error["message"]
    legacy = records["hvac/int8@host-tflite-runtime"]
    assert legacy.status in ("ok", "skipped")
    if legacy.status == "skipped":
        assert "tflite-runtime" in legacy.error["message"]


def test_keras_file_model_with_dataset_and_exports(tmp_path: Path) -> None:
    import os as _os

    _os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Input((27,)), keras.layers.Dense(16, "relu"),
                              keras.layers.Dense(5, "softmax")])
    model.save(tmp_path / "mine.keras")
    suite_file = write_suite(tmp_path, {
        "name": "files",
        "models": [{"id": "mine", "path": "mine.keras",
                    "dataset": {"name": "har_synthetic", "params": {"samples": 500}}}],
        "devices": ["host-litert"],
        "constraints": {"flash_kb": {"max": 1}, "realtime": {"rate_hz": 50}},
        "expect": [{"model": "mine", "fails": "flash_kb", "why": "a 1 KB limit, to show a miss"}],
        "settings": {"repeats": 5, "warmup": 1},
    })
    results = str(tmp_path / "results")
    cli("run", str(suite_file), "--results", results, "-q", "--devices-dir", str(DEVICES))
    rows = cli("results", "--results", results, "--format", "json").stdout.splitlines()
    record = json.loads(rows[0])
    assert record["cell_id"] == "mine/fp32@host-litert" and record["status"] == "ok"
    # untrained, so its biases are all zero and the converter drops them: weights only
    assert record["metrics"]["params"]["value"] == 27 * 16 + 16 * 5
    assert 0.0 <= record["metrics"]["accuracy"]["value"] <= 1.0  # untrained: any accuracy
    csv = cli("results", "--results", results, "--format", "csv").stdout.splitlines()
    header = csv[0].split(",")
    assert {"cell_id", "status", "accuracy", "accuracy__unit", "latency_p50__method"} <= set(header)
    assert len(csv) == 2
    checks = cli("show", "--results", results, "--checks", "mine/fp32@host-litert").stdout
    assert "| flash_kb" in checks and "✗ FAIL" in checks  # 2 KB model > 1 KB
    assert "≤ 20 ms (50 Hz)" in checks and "✓ pass" in checks
    schema = json.loads(cli("schema", "suite").stdout)
    assert "models" in schema["properties"]


def test_builder_without_dataset_is_built_untrained(tmp_path: Path) -> None:
    suite_file = write_suite(tmp_path, {
        "name": "untrained",
        "models": [{"id": "ae", "builder": "volume_autoencoder"}],
        "variants": [{"id": "fp32"}, {"id": "int8", "steps": [{"quantize": {
            "mode": "int8", "calibration": {"samples": 20}}}]}],
        "devices": ["tflm-reference"],
        "settings": {"repeats": 3, "warmup": 1},
    })
    run = run_suite(load_suite(suite_file), tmp_path / "results", devices_dirs=[DEVICES])
    records = {r.cell_id: r for r in run.records()}
    int8 = records["ae/int8@tflm-reference"]
    assert int8.status == "ok", int8.error
    assert int8.details["build"]["model"]["untrained"] is True
    assert int8.details["build"]["steps"]["calibration"]["split"] == "generated"
    assert int8.value("arena_used") > 0 and "auc" not in int8.metrics
    assert int8.value("params") == 10 * 4 + 4 * 10  # random weights, zero biases dropped


def test_builder_without_default_shape_needs_a_dataset(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.models.base import ModelBuilder
    from bench.registry import models
    from bench.suite.spec import SpecError

    monkeypatch.setitem(models._entries, "shapeless", ModelBuilder(  # noqa: SLF001 - test only
        name="shapeless", build=lambda p, s, o: None, tasks=("classification",)))
    suite_file = write_suite(tmp_path, {"name": "s", "models": [{"id": "m", "builder":
                                                                 "shapeless"}],
                                        "devices": ["host-litert"]})
    with pytest.raises(SpecError, match=r"models\[0\].dataset: builder 'shapeless' needs a data"):
        load_suite(suite_file)


@pytest.mark.slow
def test_classical_baselines_as_c(tmp_path: Path) -> None:
    hvac = {"name": "hvac_building", "params": {"window_stride": 60}}
    suite_file = write_suite(tmp_path, {
        "name": "classical",
        "models": [{"id": "linreg", "builder": "linear_regression", "dataset": hvac},
                   {"id": "forest", "builder": "random_forest", "dataset": hvac,
                    "params": {"n_estimators": 10, "max_depth": 6}}],
        "variants": [{"id": "fp32"}, {"id": "int8", "steps": [{"quantize": {"mode": "int8"}}]}],
        "devices": ["host-litert", "tflm-reference"],
        "constraints": {"flash_kb": {"max": 512}},
        "settings": {"repeats": 20, "warmup": 2},
    })
    run = run_suite(load_suite(suite_file), tmp_path / "results", devices_dirs=[DEVICES])
    records = {r.cell_id: r for r in run.records()}
    for model in ("linreg", "forest"):
        host = records[f"{model}/fp32@host-litert"]
        assert host.status == "ok", host.error
        assert host.runner == "native" and host.metrics["latency_p50"].method == "measured"
        assert 0 < host.value("mae") < 5.0 and host.value("rmse") >= host.value("mae")
        assert host.value("model_size") > 0 and "gcc -Os" in host.details["build"]["size_note"]
        micro = records[f"{model}/fp32@tflm-reference"]
        assert micro.status == "skipped" and "host only" in micro.error["message"]
        assert records[f"{model}/int8@host-litert"].status == "failed"
    # 60 steps × 14 features = 840 weights + 1 bias
    assert records["linreg/fp32@host-litert"].value("params") == 841


def test_mixed_suite_says_how_each_figure_was_obtained(tmp_path: Path) -> None:
    suite_file = write_suite(tmp_path, {
        "name": "mixed",
        "models": [{"id": "ae", "builder": "volume_autoencoder"}],
        "variants": [{"id": "int8", "steps": [{"quantize": {"mode": "int8",
                                                             "calibration": {"samples": 20}}}]}],
        "devices": ["host-litert", "tflm-reference", "nucleo-l4r5zi"],
        "constraints": {"energy_uj": {"max": 1000}},
        "settings": {"repeats": 3, "warmup": 1, "inferences_per_s": 10},
    })
    run = run_suite(load_suite(suite_file), tmp_path / "results", devices_dirs=[DEVICES])
    records = {r.device: r for r in run.records()}
    assert {r.status for r in records.values()} == {"ok"}, [r.error for r in records.values()]
    assert records["host-litert"].metrics["latency_p50"].method == "measured"
    assert records["tflm-reference"].metrics["latency_p50"].method == "tflm"
    board = records["nucleo-l4r5zi"]
    assert board.runner == "estimate"
    assert board.metrics["latency_p50"].method == "estimated"
    assert board.metrics["energy_uj"].method == "estimated"
    assert board.metrics["arena_used"].method == "tflm"  # from the TFLite Micro run
    assert board.constraints["energy_uj"].passed is True
    assert board.details["estimate"]["core"] == "cortex-m4f"
    assert board.details["estimate"]["core_calibrated"] is True
    assert "energy_uj" not in records["host-litert"].metrics  # no power figures for the host
