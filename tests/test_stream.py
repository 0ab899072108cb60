"""Streaming replay: the library on a tiny model, cell lookup errors, and the CLI end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from bench import registry
from bench.artifacts.cache import Cache
from bench.datasets.base import Dataset
from bench.results.metrics import metric
from bench.results.record import Record
from bench.results.store import Store
from bench.run.stream import locate, plot, safe_name
from bench.runners.replay import flag_runs, replay
from bench.suite.spec import load_suite
from tests.conftest import ROOT

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EDGEBENCH = [sys.executable, "-m", "bench"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EDGEBENCH, *args], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ), timeout=600)


def write_suite(folder: Path, epochs: int = 2) -> Path:
    path = folder / "vol.yaml"
    path.write_text(yaml.safe_dump({
        "name": "vol",
        "models": [{"id": "vae", "builder": "volume_autoencoder",
                    "dataset": {"name": "volume_anomaly"}, "train": {"epochs": epochs}}],
        "variants": [{"id": "fp32"},
                     {"id": "int8", "steps": [{"quantize": {
                         "mode": "int8", "calibration": {"samples": 50}}}]}],
        "devices": ["host-litert", "host-litert-stream"],
        "settings": {"warmup": 2, "repeats": 20},
    }, sort_keys=False))
    return path


# --- helpers and lookup (no TensorFlow) -------------------------------------------------------

def test_runs_and_safe_name() -> None:
    flags = np.array([0, 1, 1, 0, 0, 1, 0, 1], dtype=bool)
    assert flag_runs(flags) == [(1, 2), (5, 5), (7, 7)]
    assert flag_runs(np.zeros(3, bool)) == []
    assert safe_name("vae/int8@host-litert") == "vae_int8_host-litert"


def _record(cell: str, status: str = "ok", sha: str | None = "ab" * 32) -> Record:
    model, rest = cell.split("/")
    variant, device = rest.split("@")
    return Record(suite="vol", run_id="r", cell_id=cell, model=model, variant=variant,
                  device=device, runner="litert", status=status, artifact_sha256=sha,
                  error=None if status == "ok" else {"kind": "build", "message": "it broke"},
                  metrics={"model_size": metric("model_size", 10, "measured")},
                  details={"dataset": {"name": "volume_anomaly", "params": {}, "seed": 0}})


def test_locate_reports_each_bad_cell(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path))
    store, cache = Store(tmp_path / "results"), Cache(tmp_path / "cache")
    with pytest.raises(LookupError, match="no runs of suite 'vol'"):
        locate(suite, "vae/fp32@host-litert", store, cache)
    run = store.create("vol", {})
    for rec in (_record("vae/fp32@host-litert"), _record("vae/int8@host-litert", "failed")):
        run.append(replace(rec, run_id=run.run_id))
    with pytest.raises(LookupError, match="no cell 'vae/fp33@host-litert'.*did you mean "
                                          "'vae/fp32@host-litert'"):
        locate(suite, "vae/fp33@host-litert", store, cache)
    with pytest.raises(LookupError, match="is failed .*it broke"):
        locate(suite, "vae/int8@host-litert", store, cache)
    with pytest.raises(LookupError, match="no artifact with sha256 abababab"):
        locate(suite, "vae/fp32@host-litert", store, cache)


# --- the library on a tiny real model ----------------------------------------------------------

def _tiny_dataset(task: str, n: int = 40) -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (rng.integers(0, 3, n) if task == "classification"
         else rng.standard_normal((n, 3)).astype(np.float32))
    return Dataset(task=task, x_train=x, y_train=y, x_val=x, y_val=y, x_test=x, y_test=y,
                   info={"window_stride": 2})


@pytest.mark.parametrize("runner", ["litert", "tflm"])
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_replay_tiny_model(tiny_tflite: Path, tmp_path: Path, task: str, runner: str) -> None:
    """The replay works on any runner's opened model (LiteRT and TFLite Micro)."""
    opened = registry.load_ref(registry.runners.get(runner).open_model)
    model = opened(tiny_tflite.read_bytes(), {}, str(tiny_tflite))
    result = replay(model, _tiny_dataset(task), period_s=0.5, warmup=2)
    assert result.latencies_ns.shape == (40,) and (result.latencies_ns > 0).all()
    assert result.outputs.shape == (40, 3) and result.stride == 2
    summary = result.summary()
    lat = summary["latency_ms"]
    assert lat["n"] == 40 and 0 < lat["p50"] <= lat["p99"] <= lat["max"]
    assert summary["real_time_factor"] == pytest.approx(lat["p99"] / 500)
    assert summary["max_rate_hz"] == pytest.approx(1000 / lat["p99"])
    key = "accuracy" if task == "classification" else "mae"
    assert summary["metrics"][key] >= 0
    png = plot(result, tmp_path / "s.png", "tiny")
    assert png.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="sample period must be positive"):
        replay(model, _tiny_dataset(task), period_s=0)


# --- end to end: a real run, then `edgebench stream` -------------------------------------------

@pytest.fixture(scope="module")
def volume_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A real 2-epoch run of the volume autoencoder (fp32, int8) on host-litert."""
    from bench.run.session import run_suite

    folder = tmp_path_factory.mktemp("stream")
    suite_file = write_suite(folder)
    run_suite(load_suite(suite_file), folder / "results", cache=Cache(folder / "cache"),
              devices_dirs=[ROOT / "devices"])
    return suite_file, folder / "results", folder / "cache"


@pytest.mark.slow
def test_stream_cli_int8(volume_run: tuple[Path, Path, Path]) -> None:
    suite_file, results, cache = volume_run
    out = cli("stream", str(suite_file), "--cell", "vae/int8@host-litert",
              "--results", str(results), "--cache", str(cache))
    assert out.returncode == 0, out.stderr
    run = Store(results).latest("vol")
    record = next(r for r in run.records() if r.cell_id == "vae/int8@host-litert")
    png = run.path / "stream-vae_int8_host-litert.png"
    summary = json.loads(png.with_suffix(".json").read_text())
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert "real-time factor" in out.stdout and str(png) in out.stdout
    lat = summary["latency_ms"]
    assert set(lat) >= {"p50", "p90", "p99", "mean", "std", "max", "n"}
    assert lat["n"] == summary["windows"] > 1000
    assert summary["period_s"] == 60.0 and 0 < summary["real_time_factor"] < 1
    assert summary["max_rate_hz"] == pytest.approx(1000 / lat["p99"])
    m = summary["metrics"]
    assert m["threshold"] == record.value("threshold")  # same rule, same artifact
    for name in ("precision", "recall", "f1"):
        assert 0 <= m[name] <= 1
        assert m[name] == pytest.approx(record.value(name))
    assert m["alerts"] == m["true_alerts"] + m["false_alerts"]
    assert 0 < m["events_detected"] <= m["events"]
    assert summary["artifact_sha256"] == record.artifact_sha256


@pytest.mark.slow
def test_stream_period_device_option_adds_stream_metrics_to_the_record(
        volume_run: tuple[Path, Path, Path]) -> None:
    _, results, _ = volume_run
    records = {r.cell_id: r for r in Store(results).latest("vol").records()}
    plain, streamed = records["vae/int8@host-litert"], records["vae/int8@host-litert-stream"]
    assert streamed.status == "ok" and not any(n.startswith("stream_") for n in plain.metrics)
    p99 = streamed.value("stream_latency_p99")
    assert streamed.value("stream_rtf") == pytest.approx(p99 / 60_000)  # one reading a minute
    assert streamed.value("stream_max_rate_hz") == pytest.approx(1000 / p99)
    assert streamed.value("stream_deadline_misses") == 0
    # the replay alerts at the record's own threshold, so the record's precision is the
    # alerts' precision: a whole number of them are true (a different threshold would not fit)
    true_alerts = streamed.value("precision") * streamed.value("stream_alerts")
    assert true_alerts == pytest.approx(round(true_alerts), abs=1e-6) and true_alerts >= 1
    assert not {"stream_precision", "stream_recall"} & set(streamed.metrics)  # no copies
    assert 0 < streamed.value("stream_events_detected") <= streamed.value("stream_events")
    assert streamed.metrics["stream_max_rate_hz"].unit == "Hz"
    assert streamed.metrics["stream_rtf"].method == "measured"


@pytest.mark.slow
def test_stream_cli_out_period_and_errors(volume_run: tuple[Path, Path, Path],
                                          tmp_path: Path) -> None:
    suite_file, results, cache = volume_run
    common = ["--results", str(results), "--cache", str(cache)]
    # a sample period of 1 ns: no invoke is that fast, so every window misses its deadline
    out = cli("stream", str(suite_file), "--cell", "vae/fp32@host-litert", *common,
              "--out", str(tmp_path / "o"), "--sample-period-s", "1e-9")
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "o" / "stream-vae_fp32_host-litert.json").read_text())
    assert summary["period_s"] == 1e-9 and summary["real_time_factor"] > 1
    assert summary["deadline_misses"] > 0

    def fails(*args: str, message: str) -> None:
        res = cli("stream", str(suite_file), *args)
        assert res.returncode == 2, res.stderr
        assert message in res.stderr, res.stderr

    fails("--cell", "vae/int4@host-litert", *common, message="no cell 'vae/int4@host-litert'")
    fails("--cell", "vae/fp32@host-litert", "--results", str(results), "--cache",
          str(tmp_path / "empty"), message="no artifact with sha256")
    fails("--cell", "vae/fp32@host-litert", *common, "--sample-period-s", "0",
          message="must be positive")
    run = Store(results).latest("vol")
    ok = next(r for r in run.records() if r.cell_id == "vae/fp32@host-litert")
    run.append(replace(ok, cell_id="vae/broken@host-litert", variant="broken", status="failed",
                       error={"kind": "runtime", "message": "invoke failed"}))
    fails("--cell", "vae/broken@host-litert", *common,
          message="cell 'vae/broken@host-litert' is failed")
