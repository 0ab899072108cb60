from __future__ import annotations

import json
from pathlib import Path

from bench.results.metrics import Metric
from bench.results.record import SCHEMA, Record, upgrade
from bench.results.store import Store


def record(cell: str, status: str = "ok") -> Record:
    return Record(suite="s", run_id="r", cell_id=cell, model="m", variant="v", device="d",
                  runner="litert", status=status,
                  metrics={"model_size": Metric(1234.0, "B", "measured")})


def test_roundtrip_and_order(tmp_path: Path) -> None:
    store = Store(tmp_path)
    run = store.create("s", {"cells": ["a", "b"]})
    run.append(record("a"))
    run.append(record("b", "failed"))
    loaded = run.records()
    assert [r.cell_id for r in loaded] == ["a", "b"]
    assert loaded[0].metrics["model_size"] == Metric(1234.0, "B", "measured")
    assert loaded[0].schema == SCHEMA
    assert store.latest("s") == run
    assert store.find(run.run_id[:12]) == run
    assert run.manifest()["cells"] == ["a", "b"]


def test_a_shared_run_id_joins_one_run_and_a_new_one_never_does(tmp_path: Path) -> None:
    store = Store(tmp_path)
    first = store.create("s", {"cells": ["a", "b"], "by": 1}, run_id="20261122T000000Z-abcd")
    first.append(record("a"))
    second = store.create("s", {"cells": ["a", "b"], "by": 2}, run_id="20261122T000000Z-abcd")
    second.append(record("b"))  # another process (an xdist worker) joins the same run
    assert second == first and [r.cell_id for r in first.records()] == ["a", "b"]
    assert first.manifest()["by"] == 1  # the first writer's manifest stands
    fresh = store.create("s", {"cells": []})
    assert fresh.run_id != first.run_id and fresh.records() == []


def test_torn_final_line_is_skipped_then_repaired(tmp_path: Path) -> None:
    run = Store(tmp_path).create("s", {})
    run.append(record("a"))
    with run.records_path.open("a") as f:
        f.write('{"suite": "s", "cell_id": "b", "met')  # killed mid-write
    assert [r.cell_id for r in run.records()] == ["a"]
    run.repair_tail()
    run.append(record("c"))
    lines = run.records_path.read_text().splitlines()
    assert [json.loads(x)["cell_id"] for x in lines] == ["a", "c"]


def test_newer_schema_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="newer"):
        upgrade({"schema": 99})


# --- untrusted store files: one bad line never makes a run unreadable ------------------------

BAD_LINES = {  # line content → what the report says
    b"\xff\xfe\x00 not text\n": "not UTF-8",
    b'{"suite": "s", "run_id": "r", "cell_id": "t", "met\n': "not JSON",
}


def _valid(cell: str, **changes: object) -> bytes:
    data = {**record(cell).to_json(), **changes}
    return (json.dumps(data) + "\n").encode()


def _corrupt_run(tmp_path: Path, suite: str = "s", cell: str = "b") -> tuple[Store, Path]:
    """A run whose records are one good line, five bad ones, a legacy NaN line, a good one."""
    store = Store(tmp_path / "results")
    run = store.create(suite, {"cells": ["a", cell]})
    run.append(record("a"))
    good = record(cell)
    good.suite = suite
    lines = [*BAD_LINES,
             _valid("m", metrics=[]),
             _valid("n", status=3),
             _valid("v", metrics={"model_size": {"value": "fast", "unit": "B",
                                                 "method": "measured"}}),
             _valid("nan", metrics={"mae": {"value": float("nan"), "unit": "°C",
                                            "method": "measured"}}),  # old runs wrote NaN
             (json.dumps(good.to_json()) + "\n").encode()]
    with run.records_path.open("ab") as f:
        f.write(b"".join(lines))
    return store, run.records_path


def test_bad_lines_are_skipped_and_reported_with_file_line_and_reason(tmp_path: Path) -> None:
    store, path = _corrupt_run(tmp_path)
    read = store.latest("s").read()
    assert [r.cell_id for r in read.records] == ["a", "nan", "b"]
    reasons = {b.line: b.reason for b in read.bad_lines}
    assert sorted(reasons) == [2, 3, 4, 5, 6]
    assert "not UTF-8" in reasons[2] and "not JSON" in reasons[3]
    assert "metrics: expected an object, got list" in reasons[4]
    assert "status: expected one of ok, failed, skipped, got 3" in reasons[5]
    assert "metrics.model_size.value: expected a number, got str" in reasons[6]
    assert str(read.bad_lines[0]).startswith(f"{path}:2: ")
    legacy = read.records[1]
    assert "mae" not in legacy.metrics and legacy.details["not_finite"] == {"metrics.mae": "nan"}


def test_writes_are_strict_json_without_nan_or_infinity(tmp_path: Path) -> None:
    import numpy as np

    from bench.results.record import ConstraintResult

    run = Store(tmp_path).create("s", {})
    diverged = record("a")
    diverged.metrics["mae"] = Metric(float("nan"), "°C", "measured")
    diverged.metrics["energy_uj"] = Metric(float("inf"), "µJ", "estimated")
    diverged.constraints["mae"] = ConstraintResult("mae", "≤ 1", float("nan"), False)
    diverged.details["loss"] = [np.float32(0.5), np.float64("-inf")]
    run.append(diverged)

    def refuse(token: str) -> None:
        raise AssertionError(f"{token} in records.jsonl is not JSON")

    data = json.loads(run.records_path.read_text(), parse_constant=refuse)
    assert sorted(data["metrics"]) == ["model_size"]  # a metric is a number or left out
    assert data["constraints"]["mae"]["value"] is None
    assert data["details"]["loss"] == [0.5, None]
    assert data["details"]["not_finite"] == {"metrics.mae": "nan", "metrics.energy_uj": "inf",
                                             "constraints.mae.value": "nan",
                                             "details.loss[1]": "-inf"}
    assert run.records()[0].value("mae") is None


def test_show_results_resume_and_leaderboard_read_a_corrupt_run(tmp_path: Path,
                                                                tiny_tflite: Path) -> None:
    import subprocess
    import sys

    import yaml

    from bench.run.session import Session
    from bench.suite.spec import load_suite
    from leaderboard.data import load_frame
    from tests.conftest import ROOT

    suite_file = tmp_path / "tiny.yaml"
    suite_file.write_text(yaml.safe_dump({"name": "tiny", "devices": ["host-litert"],
                                          "models": [{"id": "tiny", "path": str(tiny_tflite)}]}))
    cell = "tiny/fp32@host-litert"
    store, path = _corrupt_run(tmp_path, suite="tiny", cell=cell)
    results = str(store.root)
    for args in (["show"], ["results", "--all"], ["results", "--format", "json"]):
        out = subprocess.run([sys.executable, "-m", "bench", *args, "--results", results],
                             capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert out.returncode == 0, out.stderr
        assert cell in out.stdout and "Traceback" not in out.stderr
        assert f"{path}:2: not UTF-8" in out.stderr  # the user is told what was skipped
    session = Session(load_suite(suite_file), store, devices_dirs=[ROOT / "devices"])
    resumed = session.run(resume=True)  # the good record of the only cell: nothing to do
    assert [r.cell_id for r in resumed.records()] == ["a", "nan", cell]
    frame = load_frame(store.root)
    assert sorted(frame["cell_id"]) == sorted(["a", "nan", cell])


def test_runs_started_within_one_second_keep_their_order(tmp_path: Path) -> None:
    """Run ids share their start second; the order (and so ``latest``) follows creation."""
    store = Store(tmp_path)
    made = []
    for _ in range(6):
        run = store.create("s", {})
        run.records_path.touch()
        run.release()
        made.append(run.run_id)
    assert len({r.split("-")[0] for r in made}) <= 2  # mostly one second
    assert [r.run_id for r in store.runs("s")] == made
    assert store.latest("s").run_id == made[-1]
