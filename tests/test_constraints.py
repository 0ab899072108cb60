"""Deployment checks (realtime, energy, limits), energy and battery math, the validation table."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from bench.devices.device import Device
from bench.devices.energy import (
    battery_days,
    duty_cycle,
    duty_cycle_power,
    energy_metrics,
    energy_uj,
)
from bench.results.metrics import Metric
from bench.results.record import ConstraintResult, Record
from bench.suite.constraints import (
    Constraint,
    check,
    device_fit,
    known_names,
    render_validation,
    rule_problems,
)


def rule(**fields: float | str | None) -> SimpleNamespace:
    """A constraint rule with every field (``rate_hz`` included, whether or not
    ``bench.suite.constraints.Constraint`` declares it yet)."""
    base = {"max": None, "min": None, "min_delta_vs": None, "max_loss": None, "rate_hz": None}
    return SimpleNamespace(**{**base, **fields})


def ms(value: float, method: str = "measured") -> dict[str, Metric]:
    return {"latency_p50": Metric(value, "ms", method)}


def no_reference(_variant: str) -> None:
    return None


def board(**power: float) -> Device:
    return Device.model_validate({
        "id": "b", "core": "cortex-m4f", "clock_mhz": 80, "runtime": "tflm",
        "memory": {"flash_kb": 1024, "ram_kb": 256}, "connection": {"kind": "estimate"},
        **({"power": power} if power else {})})


# --- energy math ---------------------------------------------------------------------------------

def test_ten_milliwatts_at_twenty_percent_duty_is_two_milliwatts() -> None:
    assert duty_cycle_power(10, 0, duty=0.2) == pytest.approx(2.0)
    assert duty_cycle_power(10, 0, active_s=0.2, sleep_s=0.8) == pytest.approx(2.0)
    assert duty_cycle_power(10, 0, inferences_per_s=2, latency_ms=100) == pytest.approx(2.0)
    assert duty_cycle_power(10, 1, duty=0.2) == pytest.approx(2.8)  # sleep power counts too


def test_energy_and_battery() -> None:
    assert energy_uj(40.0, 2.5) == pytest.approx(100.0)  # mW × ms = µJ
    # 1000 mAh at 3.3 V = 3300 mWh; at 2 mW that is 1650 h = 68.75 days
    assert battery_days(2.0, 1000, 3.3) == pytest.approx(68.75)
    assert battery_days(0.0, 1000, 3.3) == math.inf
    assert duty_cycle(inferences_per_s=10, latency_ms=50) == pytest.approx(0.5)


@pytest.mark.parametrize("kwargs", [
    {},                                             # no way to know the duty
    {"active_s": 1.0},                              # half a period
    {"active_s": 1.0, "sleep_s": 1.0, "inferences_per_s": 1, "latency_ms": 1},  # two ways
    {"inferences_per_s": 20, "latency_ms": 100},    # 2 s of work per second
    {"active_s": -1.0, "sleep_s": 1.0},
])
def test_duty_cycle_rejects_bad_input(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        duty_cycle_power(10, 0, **kwargs)
    with pytest.raises(ValueError, match="between 0 and 1"):
        duty_cycle_power(10, 0, duty=1.5)


def test_energy_metrics_from_a_device() -> None:
    metrics = ms(5.0, "estimated")
    assert energy_metrics(board(), metrics) == {}  # no power, no energy
    out = energy_metrics(board(active_mw=10, sleep_mw=0, voltage_v=3.0, battery_mah=1000),
                         metrics, inferences_per_s=40)
    assert out["energy_uj"] == Metric(50.0, "µJ", "estimated")
    assert out["avg_power_mw"].value == pytest.approx(2.0)  # 40 × 5 ms = 20 % duty
    assert out["battery_days"].value == pytest.approx(1000 * 3.0 / 2.0 / 24)
    kept = energy_metrics(board(active_mw=10), {**metrics, "energy_uj": Metric(7, "µJ", "board")})
    assert kept == {}  # a measured energy is never overwritten


# --- checks --------------------------------------------------------------------------------------

def test_realtime_passes_when_latency_fits_the_sensor_period() -> None:
    result = check("realtime", rule(rate_hz=20), ms(49.0), no_reference)
    assert (result.metric, result.passed, result.value) == ("latency_p50", True, 49.0)
    assert result.limit == "≤ 50 ms (20 Hz)"
    assert check("realtime", rule(rate_hz=20), ms(51.0), no_reference).passed is False
    assert check("realtime", rule(rate_hz=20), {}, no_reference).passed is None


def test_energy_constraint_reads_microjoules() -> None:
    energy = {"energy_uj": Metric(120.0, "µJ", "estimated")}
    assert check("energy_uj", rule(max=150), energy, no_reference).passed is True
    assert check("energy_uj", rule(max=100), energy, no_reference).passed is False
    assert {"energy_uj", "realtime"} <= set(known_names())


def test_existing_checks_unchanged() -> None:
    size = {"model_size": Metric(20 * 1024, "B", "measured")}
    result = check("flash_kb", Constraint(max=16), size, no_reference)
    assert (result.limit, result.value, result.passed) == ("≤ 16", 20.0, False)
    acc = {"accuracy": Metric(0.90, "", "tflm")}
    ref = {"fp32": {"accuracy": Metric(0.93, "", "tflm")}}
    loss = check("accuracy", Constraint(min_delta_vs="fp32", max_loss=0.02), acc, ref.get)
    assert loss.passed is False and loss.limit == "loss vs fp32 ≤ 0.02"
    fit = device_fit(board(), {"model_size": Metric(2048 * 1024, "B", "measured")})
    assert fit["fits_flash"].passed is False and "fits_ram" in fit


def test_rule_problems() -> None:
    assert rule_problems("realtime", rule(rate_hz=10)) == []
    assert "needs `rate_hz`" in rule_problems("realtime", rule(max=5))[0]
    assert "only applies to the `realtime`" in rule_problems("latency_ms", rule(rate_hz=10))[0]
    assert rule_problems("flash_kb", Constraint(max=1)) == []  # works on the real model too


# --- the validation table ------------------------------------------------------------------------

def test_validation_table() -> None:
    record = Record(
        suite="s", run_id="r", cell_id="kws/int8@nucleo-l4r5zi", model="kws", variant="int8",
        device="nucleo-l4r5zi", runner="estimate", status="ok",
        metrics={"model_size": Metric(54_000, "B", "measured"),
                 "latency_p50": Metric(62.5, "ms", "estimated")},
        constraints={
            "flash_kb": ConstraintResult("model_size", "≤ 512", 52.73, True),
            "realtime": ConstraintResult("latency_p50", "≤ 50 ms (20 Hz)", 62.5, False),
            "energy_uj": ConstraintResult("energy_uj", "≤ 500", None, None),
        })
    table = render_validation(record)
    lines = table.splitlines()
    assert lines[0] == "kws/int8@nucleo-l4r5zi — 1/2 checks passed"
    header, rule_line, *rows = lines[2:]
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "Metric", "Target", "Achieved", "Status"]
    assert set(rule_line) <= {"|", "-"}
    assert len({len(line) for line in lines[2:]}) == 1  # padded: columns line up in a terminal
    cells = {row.split("|")[1].strip(): [c.strip() for c in row.strip("|").split("|")]
             for row in rows}
    assert cells["flash_kb"] == ["flash_kb", "≤ 512 KB", "52.73 KB", "✓ pass"]
    assert cells["realtime"] == ["realtime", "≤ 50 ms (20 Hz)", "62.5 ms (estimated)", "✗ FAIL"]
    assert cells["energy_uj"] == ["energy_uj", "≤ 500 µJ", "— (no energy_uj)", "– n/a"]
    empty = Record(**{**record.__dict__, "constraints": {}})
    assert render_validation(empty) == "kws/int8@nucleo-l4r5zi: no deployment checks"
