"""Energy per inference and battery life of a duty-cycled workload.

Units: power in mW, time in ms or s, energy in µJ (1 mW × 1 ms = 1 µJ), charge in mAh.
A duty-cycled device spends a fraction ``duty`` of its time inferring at ``active_mw`` and the
rest asleep at ``sleep_mw``; its average power is ``duty × active + (1 − duty) × sleep``.
Figures derived from a device file's datasheet power are estimates (``method: estimated``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from bench.results.metrics import Metric

if TYPE_CHECKING:
    from bench.devices.device import Device

#: Units of the metrics this module derives (also listed in ``bench.results.metrics.UNITS``).
ENERGY_UNITS = {"energy_uj": "µJ", "avg_power_mw": "mW", "battery_days": "d"}


def _non_negative(**values: float | None) -> None:
    for name, value in values.items():
        if value is not None and (math.isnan(value) or value < 0):
            raise ValueError(f"{name} must be a number ≥ 0, got {value}")


def energy_uj(active_mw: float, latency_ms: float) -> float:
    """Energy of one inference: active power × latency (mW × ms = µJ)."""
    _non_negative(active_mw=active_mw, latency_ms=latency_ms)
    return active_mw * latency_ms


def duty_cycle(active_s: float | None = None, sleep_s: float | None = None,
               inferences_per_s: float | None = None, latency_ms: float | None = None) -> float:
    """Fraction of time spent active, from ``active_s`` + ``sleep_s`` (one period), or from
    ``inferences_per_s`` × ``latency_ms``. Raises ValueError when the workload cannot keep up."""
    _non_negative(active_s=active_s, sleep_s=sleep_s, inferences_per_s=inferences_per_s,
                  latency_ms=latency_ms)
    by_period = active_s is not None or sleep_s is not None
    by_rate = inferences_per_s is not None or latency_ms is not None
    if by_period == by_rate:
        raise ValueError("give either active_s and sleep_s, or inferences_per_s and latency_ms")
    if by_period:
        if active_s is None or sleep_s is None:
            raise ValueError("active_s and sleep_s go together")
        if active_s + sleep_s == 0:
            raise ValueError("active_s + sleep_s must be > 0")
        return active_s / (active_s + sleep_s)
    if inferences_per_s is None or latency_ms is None:
        raise ValueError("inferences_per_s and latency_ms go together")
    duty = inferences_per_s * latency_ms / 1000.0
    if duty > 1:
        raise ValueError(f"{inferences_per_s:g} inferences/s of {latency_ms:g} ms each need "
                         f"{duty:.3g} s of compute per second: the device cannot keep up")
    return duty


def duty_cycle_power(active_mw: float, sleep_mw: float, active_s: float | None = None,
                     sleep_s: float | None = None, inferences_per_s: float | None = None,
                     latency_ms: float | None = None, *, duty: float | None = None) -> float:
    """Average power (mW) of a duty-cycled workload; the duty comes from ``duty`` itself, from
    ``active_s``/``sleep_s`` or from ``inferences_per_s``/``latency_ms`` (see :func:`duty_cycle`).

    >>> duty_cycle_power(10, 0, duty=0.2)
    2.0
    """
    _non_negative(active_mw=active_mw, sleep_mw=sleep_mw)
    if duty is None:
        duty = duty_cycle(active_s, sleep_s, inferences_per_s, latency_ms)
    elif any(v is not None for v in (active_s, sleep_s, inferences_per_s, latency_ms)):
        raise ValueError("give the duty cycle one way only")
    elif not 0 <= duty <= 1:
        raise ValueError(f"duty must be between 0 and 1, got {duty}")
    return duty * active_mw + (1 - duty) * sleep_mw


def battery_days(avg_mw: float, battery_mah: float, voltage_v: float) -> float:
    """Days a battery of ``battery_mah`` at ``voltage_v`` lasts at ``avg_mw`` (ideal conversion,
    no self-discharge); infinite at 0 mW."""
    _non_negative(avg_mw=avg_mw, battery_mah=battery_mah, voltage_v=voltage_v)
    energy_mwh = battery_mah * voltage_v
    return math.inf if avg_mw == 0 else energy_mwh / avg_mw / 24.0


def battery_days_at_rate(energy_uj: float, latency_ms: float, inferences_per_s: float,
                         sleep_mw: float, battery_mah: float, voltage_v: float) -> float:
    """Days a battery lasts inferring ``inferences_per_s`` times a second, each inference taking
    ``latency_ms`` and ``energy_uj`` (so drawing ``energy_uj / latency_ms`` mW), asleep at
    ``sleep_mw`` the rest of the time: :func:`duty_cycle_power`'s model, then
    :func:`battery_days`. Raises ValueError when the device cannot keep up with the rate."""
    _non_negative(energy_uj=energy_uj)
    if not latency_ms > 0:
        raise ValueError(f"latency_ms must be > 0, got {latency_ms}")
    avg = duty_cycle_power(energy_uj / latency_ms, sleep_mw, inferences_per_s=inferences_per_s,
                           latency_ms=latency_ms)
    return battery_days(avg, battery_mah, voltage_v)


def energy_metrics(device: Device, metrics: dict[str, Metric],
                   inferences_per_s: float | None = None,
                   battery_mah: float | None = None) -> dict[str, Metric]:
    """Energy figures for one cell from the device's power and the cell's ``latency_p50``.

    ``energy_uj`` when the device states ``power.active_mw`` (an ``energy_uj`` already in
    ``metrics`` is kept); with a workload rate and ``power.sleep_mw`` also ``avg_power_mw``, and
    with a battery (argument, else ``power.battery_mah``) and ``power.voltage_v`` also
    ``battery_days``. All ``method: estimated``; nothing when a figure is missing.
    """
    power, latency = device.power, metrics.get("latency_p50")
    if power is None or power.active_mw is None or latency is None:
        return {}
    out = {}
    if "energy_uj" not in metrics:
        out["energy_uj"] = Metric(energy_uj(power.active_mw, latency.value),
                                  ENERGY_UNITS["energy_uj"], "estimated")
    if inferences_per_s is None or power.sleep_mw is None:
        return out
    avg = duty_cycle_power(power.active_mw, power.sleep_mw, inferences_per_s=inferences_per_s,
                           latency_ms=latency.value)
    out["avg_power_mw"] = Metric(avg, ENERGY_UNITS["avg_power_mw"], "estimated")
    battery = battery_mah if battery_mah is not None else power.battery_mah
    if battery is not None and power.voltage_v is not None:
        out["battery_days"] = Metric(battery_days(avg, battery, power.voltage_v),
                                     ENERGY_UNITS["battery_days"], "estimated")
    return out
