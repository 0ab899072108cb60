"""The one formatter: significant digits whatever the magnitude, durations in the unit that
suits them, and the places that print figures using it."""

from __future__ import annotations

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
