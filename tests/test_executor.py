"""The executor seam: where cells run does not change their records. Outcomes may arrive in any
order; a cell's deltas and constraints wait for the cells they compare against."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bench import registry
from bench.results.record import Record
from bench.run.cellwork import CellWork, MeasureHook, Outcome
from bench.run.executors.local import LOCAL
from bench.run.session import run_suite
from bench.suite.matrix import Cell
from bench.suite.spec import load_suite

DEVICES = Path(__file__).resolve().parents[1] / "devices"


class ReversedExecutor:
    """Runs every cell here, then hands the outcomes over last first."""

    name = "reversed"

    def outcomes(self, work: CellWork, cells: list[Cell],
                 measure: MeasureHook | None = None) -> Iterator[Outcome]:
        yield from reversed(list(LOCAL.outcomes(work, cells, measure)))


def suite_file(tmp_path: Path, tiny_tflite: Path) -> Path:
    """A tiny classifier (4 features, 3 classes) whose reference variant is listed last."""
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({
        "name": "order",
        "models": [{"id": "tiny", "path": str(tiny_tflite),
                    "dataset": {"name": "har_synthetic",
                                "params": {"features": 4, "classes": 3, "samples": 300}}}],
        "variants": [{"id": "copy"}, {"id": "fp32"}],
        "devices": ["host-litert", "tflm-reference"],
        "constraints": {"accuracy": {"min_delta_vs": "fp32", "max_loss": 0.01}},
        "settings": {"repeats": 3, "warmup": 1}}))
    return path


def comparable(record: Record) -> tuple:
    return (record.cell_id, record.status, record.artifact_sha256,
            {k: m.value for k, m in record.metrics.items() if not k.startswith("latency")},
            {k: c.passed for k, c in record.constraints.items()})


def test_local_is_the_registered_default() -> None:
    assert registry.executors.get("local") is LOCAL
    with pytest.raises(KeyError, match="unknown executor 'rey'"):
        registry.executors.get("rey")


def test_records_do_not_depend_on_the_order_outcomes_arrive(tmp_path: Path,
                                                            tiny_tflite: Path) -> None:
    suite = load_suite(suite_file(tmp_path, tiny_tflite))
    local = run_suite(suite, tmp_path / "a", devices_dirs=[DEVICES]).records()
    backwards = run_suite(suite, tmp_path / "b", devices_dirs=[DEVICES],
                          executor=ReversedExecutor()).records()
    assert [r.cell_id for r in backwards] != [r.cell_id for r in local]  # another order
    for record in local:
        assert record.status == "ok", record.error
        if record.variant == "copy":  # compared against fp32, which ran after it
            assert record.value("accuracy_delta") == 0.0
            assert record.constraints["accuracy"].passed is True
    assert sorted(map(comparable, backwards)) == sorted(map(comparable, local))
