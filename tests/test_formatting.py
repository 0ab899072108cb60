"""The one formatter: significant digits whatever the magnitude, durations in the unit that
suits them, and the places that print figures using it."""

from __future__ import annotations

import re

import pytest

from bench.results.formatting import (
    duration,
    kilobytes,
    quantity,
    signed,
    significant,
    with_interval,
)
from bench.results.metrics import Metric
from bench.results.record import Record
from bench.results.table import render


@pytest.mark.parametrize(("value", "text"), [
    (0, "0"), (0.0037, "0.0037"), (0.9, "0.9"), (82.04, "82.04"), (999.96, "1,000"),
    (2929.69, "2,930"), (13706.0, "13,706"), (0.00012345, "0.0001234"), (-0.5, "-0.5"),
    (1e-5, "1e-05"), (3e10, "3e+10")])
def test_significant_never_rounds_to_zero_nor_hides_thousands(value: float, text: str) -> None:
    assert significant(value) == text


@pytest.mark.parametrize(("value", "unit", "text"), [
    (0.000812, "ms", "812 ns"), (0.0043, "ms", "4.30 µs"), (82.04, "ms", "82.0 ms"),
    (1500, "ms", "1.50 s"), (0.0000005, "ms", "0.500 ns"), (2.5, "s", "2.50 s"),
    (750, "µs", "750 µs"), (1200, "ns", "1.20 µs"), (0, "ms", "0 ms")])
def test_durations_take_the_unit_that_suits_them(value: float, unit: str, text: str) -> None:
    assert duration(value, unit) == text


def test_quantities_intervals_and_signs() -> None:
    assert quantity(20480, "B") == "20.0 KB" and quantity(44, "B") == "0.04297 KB"
    assert kilobytes(6712.44) == "6,712.4"
    assert quantity(40710.0) == "40,710" and quantity(0.5, "µJ") == "0.5 µJ"
    assert quantity(0.000812, "ms") == "812.0 ns"
    assert with_interval(0.0008, 0.0006, 0.0011, "ms") == "800 ns (600–1,100)"
    assert with_interval(5.2, 4, 6, "µJ") == "5.20 µJ (4.00–6.00)"
    assert signed(0.0037) == "+0.0037" and signed(-1.25) == "-1.25"


def test_the_terminal_table_prints_a_sub_microsecond_latency_with_its_unit() -> None:
    record = Record(suite="s", run_id="r", cell_id="m/int8@d", model="m", variant="int8",
                    device="d", runner="native", status="ok",
                    metrics={"latency_p50": Metric(0.000412, "ms", "measured"),
                             "model_size": Metric(44, "B", "measured")})
    row = next(line for line in render([record]).splitlines() if line.startswith("m/int8@d"))
    assert "412 ns" in row and "0.04297" in row and "0.00" not in row.replace("0.04297", "")


def _sub_us_frame():  # noqa: ANN202 - the leaderboard's frame of two sub-µs cells
    import pandas as pd

    from bench.results.table import frame

    records = [Record(suite="s", run_id="r", cell_id=f"m/{v}@d", model="m", variant=v,
                      device="d", runner="native", status="ok",
                      metrics={"latency_p50": Metric(lat, "ms", method, *bounds),
                               "accuracy": Metric(acc, "", "measured")})
               for v, lat, method, bounds, acc in (
                   ("fp32", 0.000412, "measured", (), 0.91234),
                   ("int8", 0.000231, "estimated", (0.000198, 0.000262), 0.91231))]
    df = frame(records).assign(run="s/r", suite="s", run_id="r")
    return df.assign(**{"Δaccuracy": pd.Series([0.0, -0.00003])})


def test_the_home_table_never_writes_a_sub_microsecond_latency_as_zero() -> None:
    from leaderboard import ranking

    html = ranking.style(ranking.board(_sub_us_frame(), "accuracy", ["latency_p50"])).to_html()
    assert ">0.000412<" in html.replace(" ", "")
    assert "≈ 0.000231 (0.000198–0.000262)" in html  # the estimate and its interval
    assert "-3e-05" in html  # a tiny change keeps its digits, not -0.0000
    assert not re.search(r"[>(–]-?0\.0+[<)–]", html.replace(" ", ""))


def test_report_lines_stream_and_compare_write_figures_through_the_formatter() -> None:
    from bench.cli.stream import _format
    from bench.results.aggregate import summary
    from bench.results.compare import Change

    assert summary([0.000412, 0.000430], "latency_p50", "ms") == "421 ± 13 ns"
    assert summary([82.0, 84.0], "latency_p50", "ms") == "83 ± 1.4 ms"
    assert summary([44.0, 44.0], "arena_used", "B") == "0.04297 ± 0 KB"
    assert summary([1500.5, 2500.5], "latency_p50", "µs") == "2.001 ± 0.71 ms"
    change = Change("m/v@d", "instructions", 1000.0, 14706.0, "", 13706.0)
    assert change.change_text() == "+13,706"  # not +1.371e+04
    lat = {"p50": 0.000412, "p90": 0.00043, "p99": 0.0012, "max": 0.0031}
    text = _format({"cell": "m/v@d", "run": "s/r", "windows": 40, "period_s": 0.01,
                    "latency_ms": lat, "real_time_factor": 1.2e-4,
                    "real_time_factor_max": 3.1e-4, "deadline_misses": 0,
                    "max_rate_hz": 833_333.3, "record_metrics": {"accuracy": 0.9},
                    "task": "classification", "metrics": {"accuracy": 0.9},
                    "plot": "p.png", "summary": "s.json"})
    line = next(x for x in text.splitlines() if "latency" in x)
    assert line.split() == ["latency:", "p50", "412", "ns", "p90", "430", "ns", "p99", "1.20",
                            "µs", "max", "3.10", "µs"]
    assert "833,333 Hz" in text and "0.00012" in text
