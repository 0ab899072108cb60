from __future__ import annotations

import json
from pathlib import Path

from bench.metrics import Metric
from bench.record import Record, upgrade
from bench.store import Store


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
    assert loaded[0].schema == 1
    assert store.latest("s") == run
    assert store.find(run.run_id[:12]) == run
    assert run.manifest()["cells"] == ["a", "b"]


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
