"""Timing you can trust: raw samples kept beside the record, several worker processes, the
machine's state, instability warnings, and significance when two runs are compared."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from bench.results import samples
from bench.results.compare import compare_runs
from bench.results.significance import holm, on_samples, on_summaries
from bench.results.stability import instability
from bench.results.store import Store
from bench.run.session import MixedHosts, Session
from bench.runners.io import latency_stats
from bench.suite.spec import load_suite

ROOT = Path(__file__).resolve().parents[1]
DEVICES = ROOT / "devices"
CELL = "m/fp32@host-litert"


@pytest.fixture(scope="module")
def big_tflite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same interface as ``tiny_tflite`` (4 → 3) with far more work per invoke."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(512, "relu"),
                              keras.layers.Dense(512, "relu"), keras.layers.Dense(512, "relu"),
                              keras.layers.Dense(3, activation="softmax")])
    fn = tf.function(lambda x: model(x)).get_concrete_function(tf.TensorSpec([1, 4], tf.float32))
    path = tmp_path_factory.mktemp("models") / "big.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([fn], model).convert())
    return path


def suite(tmp_path: Path, model: Path, name: str = "timing") -> Path:
    path = tmp_path / f"{name}-{model.stem}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "models": [{"id": "m", "path": str(model)}], "devices": ["host-litert"],
        "settings": {"warmup": 5, "repeats": 60, "processes": 2}}))
    return path


def run(tmp_path: Path, model: Path, results: str = "results", resume: bool = False,
        **kw: object):  # noqa: ANN201 - a Run
    session = Session(load_suite(suite(tmp_path, model)), Store(tmp_path / results),
                      devices_dirs=[DEVICES], **kw)
    return session.run(resume=resume)


def test_raw_samples_round_trip_and_give_the_record_its_percentiles(
        tmp_path: Path, tiny_tflite: Path) -> None:
    done = run(tmp_path, tiny_tflite)
    (record,) = done.records()
    assert record.status == "ok", record.error
    kept = samples.load(done.path, record.details["samples"])
    assert [len(p) for p in kept.processes] == [60, 60] and kept.complete
    assert record.details["timing"]["processes"] == 2
    assert len(record.details["timing"]["process_medians_ms"]) == 2
    again = latency_stats(kept.all.tolist(), "measured")
    for name in ("latency_p50", "latency_p90", "latency_p99", "latency_n"):
        assert again[name].value == pytest.approx(record.value(name)), name
    out = subprocess.run([sys.executable, "-m", "bench", "results", "--raw", CELL, "--results",
                          str(tmp_path / "results")], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert lines[0] == "process,index,ns" and len(lines) == 121
    assert sorted(int(x.split(",")[2]) for x in lines[1:]) == sorted(kept.all.astype(int))


def test_the_run_records_the_machine_and_refuses_a_resume_elsewhere(
        tmp_path: Path, tiny_tflite: Path) -> None:
    done = run(tmp_path, tiny_tflite)
    state = done.manifest()["machine"]
    assert state["cpu_model"] and state["logical_cores"] >= 1 and len(state["load_avg"]) == 3
    (record,) = done.records()
    assert record.provenance["machine"]["node"] == state["node"]
    manifest = done.path / "run.json"
    data = json.loads(manifest.read_text())
    data["machine"]["cpu_model"] = "another CPU"
    data["cells"].append("m/other@host-litert")  # a cell left to do
    manifest.write_text(json.dumps(data))
    (done.path / "records.jsonl").write_text("")
    done.release()
    with pytest.raises(MixedHosts, match="another CPU.*--allow-mixed-hosts"):
        run(tmp_path, tiny_tflite, resume=True)
    resumed = run(tmp_path, tiny_tflite, resume=True, allow_mixed_hosts=True)
    (record,) = resumed.records()
    assert "resumed on another machine" in record.details["mixed_hosts"]


def test_same_artifact_is_no_regression_and_a_slower_one_is(
        tmp_path: Path, tiny_tflite: Path, big_tflite: Path) -> None:
    first = run(tmp_path, tiny_tflite, "a")
    second = run(tmp_path, tiny_tflite, "b")
    slower = run(tmp_path, big_tflite, "c")
    # µs-scale timings drift a few % between runs on a shared machine: a 25 % tolerance
    same = {c.metric: c for c in compare_runs(first, second, tolerance=0.25)}
    assert same["latency_p50"].verdict in ("within noise", "within tolerance", "same")
    worse = {c.metric: c for c in compare_runs(first, slower)}["latency_p50"]
    assert worse.significant and worse.verdict == "regression"
    assert worse.change > 1 and worse.low > 0 and worse.test == "bootstrap"
    better = {c.metric: c for c in compare_runs(slower, first)}["latency_p50"]
    assert better.significant and better.verdict == "improvement" and better.change < 0


def test_compare_cli_flags_the_regression(tmp_path: Path, tiny_tflite: Path,
                                          big_tflite: Path) -> None:
    first, slower = run(tmp_path, tiny_tflite), run(tmp_path, big_tflite)
    out = subprocess.run([sys.executable, "-m", "bench", "compare", first.run_id,
                          slower.run_id, "--results", str(tmp_path / "results"),
                          "--fail-on-regression"], capture_output=True, text=True)
    assert out.returncode == 1, out.stderr
    (latency,) = [line for line in out.stdout.splitlines() if "latency_p50" in line]
    assert latency.endswith("regression") and "2 regressions" in out.stdout  # and model_size
    (size,) = [line for line in out.stdout.splitlines() if "model_size" in line]
    assert "%" in size  # a relative change, as the pytest plugin prints it


def test_significance_primitives() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(100, 5, 300)
    assert on_samples(a, rng.normal(100, 5, 300)).p_value > 0.01
    shifted = on_samples(a, rng.normal(120, 5, 300))
    assert shifted.p_value < 1e-6 and 0.15 < shifted.change < 0.25
    assert shifted.low < shifted.change < shifted.high
    welch = on_summaries(100, 5, 300, 120, 5, 300)
    assert welch.p_value < 1e-6 and welch.change == pytest.approx(0.2)
    assert holm([0.001, 0.03, 0.04], 0.05) == [True, False, False]
    assert holm([0.001, 0.01, 0.02], 0.05) == [True, True, True]


def test_instability_warnings() -> None:
    rng = np.random.default_rng(1)
    steady = samples.Samples([rng.normal(1e5, 1e3, 200), rng.normal(1e5, 1e3, 200)], [200, 200])
    assert instability(steady) == []
    noisy = samples.Samples([rng.normal(1e5, 4e4, 200).clip(1)], [200])
    assert "interquartile range is" in instability(noisy)[0]
    rare = rng.normal(1e5, 1e3, 400)
    rare[::50] *= 20  # a few interrupted invokes: the std balloons, the body is steady
    assert np.std(rare) / np.median(rare) > 0.5
    assert instability(samples.Samples([rare], [400])) == []
    apart = samples.Samples([rng.normal(1e5, 1e3, 200), rng.normal(1.3e5, 1e3, 200)], [200, 200])
    assert any("medians differ by 30%" in w for w in instability(apart))


def test_samples_above_the_raw_limit_keep_a_faithful_compact_form(tmp_path: Path) -> None:
    many = np.arange(1, samples.MAX_RAW + 5001, dtype=np.int64) * 10
    kept = samples.Samples([many], [len(many)])
    rel = samples.save(tmp_path, "x/y@z", kept)
    back = samples.load(tmp_path, rel)
    assert back.counts == [len(many)] and len(back.processes[0]) == samples.KEEP_FIRST
    stored = json.loads((tmp_path / rel).read_text())["processes"][0]["histogram"]
    assert sum(stored["count"]) == len(many)
    with pytest.raises(ValueError, match="leaves the run folder"):
        samples.load(tmp_path, "../../etc/passwd")


def test_show_flags_an_unstable_latency(tmp_path: Path, tiny_tflite: Path) -> None:
    from bench.results.table import UNSTABLE, render

    (record,) = run(tmp_path, tiny_tflite).records()
    record.details["warnings"] = ["unstable timing: the std is 40% of the median"]
    text = render([record])
    assert f" {UNSTABLE}" in text.splitlines()[2] and "unstable timing" in text
    assert "1 cells with unstable timing" in text
    record.details.pop("warnings")
    assert UNSTABLE not in render([record])
