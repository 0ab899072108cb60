"""How intervals are stored and shown: metrics, records (old ones still read), device files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.devices.device import SpecError, load_device
from bench.results.metrics import Metric, metric
from bench.results.record import Record, RecordError

OLD_RECORD = {  # schema 1, as edgebench wrote it before intervals
    "schema": 1, "suite": "s", "run_id": "r", "cell_id": "m/v@d", "model": "m", "variant": "v",
    "device": "d", "runner": "estimate", "status": "ok", "artifact_sha256": None, "error": None,
    "metrics": {"latency_p50": {"value": 43.2, "unit": "ms", "method": "estimated"}},
    "constraints": {}, "details": {}, "provenance": {}}


def test_metric_interval_text_and_json() -> None:
    m = metric("latency_p50", 82.04, "estimated", interval=(68.3, 110.2))
    assert m.text() == "82.0 ms (68.3–110)"
    # a sub-millisecond figure takes the unit that suits it, its interval too
    assert Metric(0.5312, "ms", "estimated", 0.4251, 0.6914).text() == "531 µs (425–691)"
    assert Metric(1240.6, "µJ", "estimated", 1000.0, 1500.0).text() == "1,241 µJ (1,000–1,500)"
    assert Metric(3.0, "ms", "board").text() == "3.00 ms"
    assert m.to_json() == {"value": 82.04, "unit": "ms", "method": "estimated", "low": 68.3,
                           "high": 110.2}
    assert Metric(1.0, "B", "measured").to_json() == {"value": 1.0, "unit": "B",
                                                       "method": "measured"}
    assert Metric.from_json(m.to_json()) == m


def test_records_keep_intervals_and_old_records_read() -> None:
    new = Record.from_json({**OLD_RECORD, "schema": 2, "metrics": {"latency_p50": {
        "value": 43.2, "unit": "ms", "method": "estimated", "low": 30.1, "high": 56.0}}})
    lat = new.metrics["latency_p50"]
    assert (lat.low, lat.high) == (30.1, 56.0) and new.schema == 2
    again = Record.from_json(json.loads(json.dumps(new.to_json())))
    assert again.metrics == new.metrics
    old = Record.from_json(OLD_RECORD)  # upgraded on reading: no interval, schema 2
    assert old.metrics["latency_p50"].low is None and old.schema == 2
    bad = {**OLD_RECORD, "metrics": {"latency_p50": {"value": 1.0, "unit": "ms",
                                                     "method": "estimated", "low": "x"}}}
    with pytest.raises(RecordError, match="latency_p50.low"):
        Record.from_json(bad)
    extra = {**OLD_RECORD, "metrics": {"latency_p50": {"value": 1.0, "unit": "ms",
                                                       "method": "estimated", "p99": 2}}}
    with pytest.raises(RecordError, match="expected the keys"):
        Record.from_json(extra)


DEVICE = """id: {id}
core: cortex-m4f
clock_mhz: 120
memory: {{flash_kb: 2048, ram_kb: 640}}
runtime: x-cube-ai
{extra}
connection: {{kind: estimate}}
"""


def _device(tmp_path: Path, extra: str, name: str = "b") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(DEVICE.format(id=name, extra=extra))
    return path


@pytest.mark.parametrize(("text", "version"), [
    ('"X-CUBE-AI v7.3.0"', "7.3"), ("7.3", "7.3"), ('"v10.2"', "10.2"), ("8", "8.0")])
def test_runtime_version_is_normalised(tmp_path: Path, text: str, version: str) -> None:
    assert load_device(_device(tmp_path, f"runtime_version: {text}")).runtime_version == version


def test_device_files_name_a_release_and_a_table(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="runtime_version.*no version number"):
        load_device(_device(tmp_path, "runtime_version: latest"))
    with pytest.raises(SpecError, match="estimate.tables"):
        load_device(_device(tmp_path, "estimate: {tables: x.json}"))
    (tmp_path / "sub").mkdir()
    device = load_device(_device(tmp_path / "sub", "estimate: {coefficients: ../t.json}"))
    assert device.estimate.coefficients.resolve() == (tmp_path / "t.json").resolve()
    assert device.model_dump(mode="json")["estimate"]["coefficients"].endswith("t.json")
    assert load_device(_device(tmp_path, "")).runtime_version is None


def test_emulated_twin_forgets_the_boards_release(tmp_path: Path) -> None:
    path = _device(tmp_path, "runtime_version: 9.0\nemulate: {machine: mps2-an386}")
    twin = load_device(path).emulated()
    assert twin.runtime == "tflm" and twin.runtime_version is None


def test_show_prints_intervals() -> None:
    from bench.results.table import frame, render, report_cell

    est = Record.from_json({**OLD_RECORD, "schema": 2, "metrics": {"latency_p50": {
        "value": 82.04, "unit": "ms", "method": "estimated", "low": 68.3, "high": 110.2}}})
    board = Record.from_json({**OLD_RECORD, "cell_id": "m/v@b", "device": "b", "metrics": {
        "latency_p50": {"value": 79.5, "unit": "ms", "method": "board"}}})
    text = render([est, board])
    assert "82.0 ms (68.3–110)" in text and "79.5 ms" in text
    assert report_cell(est, "latency_p50", None) == "82.0 ms (68.3–110)"
    df = frame([est, board])
    assert df.loc[0, "latency_p50__low"] == 68.3 and df.loc[0, "latency_p50__high"] == 110.2
    assert df["latency_p50__low"].isna().iloc[1]
