from __future__ import annotations

from bench.results.expected import verdict
from bench.results.metrics import Metric
from bench.results.record import ConstraintResult, Record
from bench.results.table import render, render_report


def rec(variant: str, size: float, acc: float, status: str = "ok") -> Record:
    return Record(suite="s", run_id="r", cell_id=f"m/{variant}@d", model="m", variant=variant,
                  device="d", runner="litert", status=status,
                  metrics={"model_size": Metric(size, "B", "measured"),
                           "accuracy": Metric(acc, "", "measured")},
                  constraints={"flash_kb": ConstraintResult("model_size", "≤ 20", size / 1024,
                                                            size / 1024 <= 20)})


def test_report_ratios_units_and_checks() -> None:
    records = [rec("fp32", 51200, 0.95), rec("int8", 20480, 0.94), rec("int4", 10240, 0.9)]
    text = render_report(records, [{"title": "Quantization", "rows": [{"variant": "fp32"},
                                                                      {"variant": "int*"}],
                                    "device": "d",
                                    "columns": ["model_size", "size_reduction", "checks"]}])
    lines = text.splitlines()
    assert "Quantization" in lines
    int8 = next(line for line in lines if line.startswith("m/int8@d"))
    assert "20.0 KB" in int8 and "2.50×" in int8 and "1/1" in int8
    fp32 = next(line for line in lines if line.startswith("m/fp32@d"))
    assert "1.00×" in fp32 and "✗ flash_kb" in fp32
    # rows follow the rules' order: fp32 first, then int4/int8 in run order
    order = [line.split()[0] for line in lines if line.startswith("m/")]
    assert order == ["m/fp32@d", "m/int8@d", "m/int4@d"]


def test_report_without_matching_cells() -> None:
    text = render_report([rec("fp32", 1, 1)], [{"title": "T", "rows": [{"model": "x"}],
                                                "columns": ["accuracy"]}])
    assert "(no cells)" in text


def test_leaderboard_counts_statuses() -> None:
    text = render([rec("fp32", 2048, 0.9), rec("fp16", 1024, 0.9, "skipped")])
    assert "\n1 ok, 1 skipped — 2 cells\nno unexpected failure" in text
    assert "2.0" in text  # size in KB


def test_expected_misses_read_as_expected_and_unexpected_ones_as_failures() -> None:
    expected = rec("fp32", 51200, 0.9)  # 50 KB: misses flash_kb, as the suite expects
    expected.details["expected"] = {"flash_kb": "fp32 is the baseline; it does not fit"}
    unexpected = rec("int8", 40960, 0.9)  # misses too, nobody expected it
    passing = rec("int4", 1024, 0.9)  # expected to miss, passes
    passing.details["expected"] = {"flash_kb": "int4 was thought too big"}
    unsupported = rec("fp16", 1024, 0.9, "skipped")
    unsupported.error = {"kind": "unsupported", "message": "no float16 kernels"}
    records = [expected, unexpected, passing, unsupported]
    assert [verdict(r).outcome for r in records] == ["expected miss", "miss", "unexpected pass",
                                                     "unsupported"]
    assert verdict(expected).reason() == "flash_kb: fp32 is the baseline; it does not fit"
    text = render(records, width=200)
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith("m/")}
    assert "✗ flash_kb (expected)" in rows["m/fp32@d"]
    assert "expected: flash_kb: fp32 is the baseline" in rows["m/fp32@d"]
    assert "(expected)" not in rows["m/int8@d"]
    assert "expected to miss flash_kb, but passed" in rows["m/int4@d"]
    assert "unsupported: no float16 kernels" in rows["m/fp16@d"]
    assert text.splitlines()[-1] == (
        "1 unexpected failures: m/int8@d (flash_kb); 1 expected misses; 1 expected to miss but "
        "passed: m/int4@d (flash_kb); 1 unsupported by their runtime")


def test_report_device_filter_and_large_counts() -> None:
    a, b = rec("fp32", 51200, 0.95), rec("fp32", 51200, 0.95)
    b.device, b.cell_id = "other", "m/fp32@other"
    a.metrics["params"] = Metric(40710.0, "", "measured")
    text = render_report([a, b], [{"title": "T", "rows": [{"model": "m", "device": "*"}],
                                   "device": "d", "columns": ["params"]}])
    assert "m/fp32@other" not in text and "40,710" in text
