"""Report tables with ``aggregate: true``: one line per rule and device, mean ± std of its cells."""

from __future__ import annotations

import statistics

import pytest

from bench.results.metrics import Metric
from bench.results.record import Record
from bench.results.table import render_report
from bench.suite.spec import ReportTable


def rec(model: str, variant: str, acc: float, size: float = 1024.0, device: str = "d",
        status: str = "ok") -> Record:
    metrics = {"model_size": Metric(size, "B", "measured"), "accuracy": Metric(acc, "", "measured")}
    return Record(suite="s", run_id="r", cell_id=f"{model}/{variant}@{device}", model=model,
                  variant=variant, device=device, runner="litert", status=status,
                  metrics=metrics if status == "ok" else {})


def seeds() -> list[Record]:
    """A student at three seeds, from labels (fp32) and distilled; deltas are per seed."""
    records = []
    for seed, (plain, distilled) in enumerate([(0.80, 0.84), (0.82, 0.83), (0.78, 0.85)]):
        records += [rec(f"student_s{seed}", "fp32", plain),
                    rec(f"student_s{seed}", "distilled", distilled)]
        records[-1].metrics["accuracy_delta"] = Metric(distilled - plain, "", "measured")
    return records


def line(text: str, start: str) -> str:
    return next(row for row in text.splitlines() if row.startswith(start))


def test_one_line_per_rule_with_mean_and_sample_std() -> None:
    table = {"title": "Distillation", "aggregate": True, "device": "d",
             "rows": [{"model": "student_s*", "variant": "fp32"},
                      {"model": "student_s*", "variant": "distilled"}],
             "columns": ["accuracy", "accuracy_delta", "model_size"]}
    text = render_report(seeds(), [table])
    plain = line(text, "student_s*/fp32@d")
    distilled = line(text, "student_s*/distilled@d")
    assert len([row for row in text.splitlines() if row.startswith("student_s")]) == 2
    assert "3 ok" in plain
    assert f"{statistics.fmean([0.80, 0.82, 0.78]):.4g} ± " \
           f"{statistics.stdev([0.80, 0.82, 0.78]):.2g}" in plain
    gains = [0.04, 0.01, 0.07]
    assert f"+{statistics.fmean(gains):.4f} ± {statistics.stdev(gains):.4f}" in distilled
    assert "1.0 ± 0 KB" in distilled
    teacher = rec("teacher", "fp32", 0.99)
    teacher.metrics["params"] = Metric(13708.0, "", "measured")
    text = render_report([teacher], [{**table, "rows": [{"model": "teacher"}],
                                      "columns": ["params"]}])
    assert "13,708" in line(text, "teacher/*@d")


def test_failed_cells_are_counted_not_averaged_and_devices_stay_apart() -> None:
    records = [rec("m_s0", "fp32", 0.9), rec("m_s1", "fp32", 0.0, status="failed"),
               rec("m_s0", "fp32", 0.7, device="e")]
    text = render_report(records, [{"title": "T", "aggregate": True,
                                    "rows": [{"model": "m_s*"}], "columns": ["accuracy"]}])
    on_d = line(text, "m_s*/*@d")
    assert "1 failed, 1 ok" in on_d and "0.9" in on_d and "±" not in on_d
    assert "0.7" in line(text, "m_s*/*@e")


def test_without_aggregate_each_cell_is_its_own_line() -> None:
    text = render_report(seeds(), [{"title": "T", "rows": [{"model": "student_s*"}],
                                    "columns": ["accuracy"]}])
    assert len([row for row in text.splitlines() if row.startswith("student_s")]) == 6


@pytest.mark.parametrize("value", [True, False])
def test_the_suite_field_is_a_strict_bool(value: bool) -> None:
    table = ReportTable.model_validate({"title": "T", "rows": [{}], "columns": ["accuracy"],
                                        "aggregate": value})
    assert table.aggregate is value
    with pytest.raises(ValueError):
        ReportTable.model_validate({"title": "T", "rows": [{}], "columns": ["accuracy"],
                                    "aggregate": "yes"})
