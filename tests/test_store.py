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
