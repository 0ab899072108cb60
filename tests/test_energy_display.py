"""What people see of energy: the advisor's battery life says where its energy came from and
carries the estimate's interval; emulated figures never read as measured on the board."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.devices.energy import battery_days_at_rate
from leaderboard import advice, data, ranking

DEV = pd.Series({"battery_mah": 1000.0, "voltage_v": 3.0, "sleep_mw": 0.0, "active_mw": 40.0})


def test_battery_life_names_its_energy_and_carries_the_interval() -> None:
    estimated = pd.Series({"energy_uj": 100.0, "energy_uj__method": "estimated",
                           "energy_uj__low": 80.0, "energy_uj__high": 125.0,
                           "latency_p50": 2.0})
    assert advice.energy_source(estimated, DEV) == "estimated"
    low, high = advice.battery_interval(estimated, 10.0, DEV)
    assert low == pytest.approx(battery_days_at_rate(125, 2, 10, 0, 1000, 3))
    assert high == pytest.approx(battery_days_at_rate(80, 2, 10, 0, 1000, 3))
    assert low < advice.battery_days(estimated, 10.0, DEV) < high

    measured = pd.Series({"energy_uj": 90.0, "energy_uj__method": "board", "latency_p50": 2.0})
    assert advice.energy_source(measured, DEV) == "board"
    assert advice.battery_interval(measured, 10.0, DEV) is None  # a measurement: no interval
    datasheet = pd.Series({"latency_p50": 2.0})
    assert advice.energy_source(datasheet, DEV) == "estimated (datasheet power)"
    assert advice.energy_source(datasheet, DEV.drop("active_mw")) == "–"


def test_emulated_figures_are_marked_and_rows_say_emulated() -> None:
    df = pd.DataFrame({
        "suite": ["s", "s"], "run_id": ["r", "r"], "model": ["m", "m"],
        "variant": ["int8", "fp32"], "device": ["bench", "bench"], "status": ["ok", "ok"],
        "cell_id": ["m/int8@bench", "m/fp32@bench"],
        "energy_uj": [12.5, 30.0], "energy_uj__unit": ["µJ", "µJ"],
        "energy_uj__method": ["emulated", "board"]})
    df = data.add_derived(df)
    assert df["method"].tolist() == ["emulated", "measured"]
    styled = ranking.style(ranking.board(df, "energy_uj", ["energy_uj"])).to_html()
    assert f"12.5 {ranking.EMULATED_MARK}" in styled and f"30 {ranking.EMULATED_MARK}" not in styled
