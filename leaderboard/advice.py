"""The deploy advisor: an application's requirements against the records, walked through the
edge-versus-cloud decision. Energy and battery life follow :mod:`bench.devices.energy`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.devices.energy import battery_days_at_rate, energy_uj
from bench.results.formatting import significant
from leaderboard.data import needs

CLOUD_ROUND_TRIP_MS = 100.0


@dataclass
class Requirements:
    """What the application needs."""

    model: str
    latency_budget_ms: float = 100.0
    privacy_critical: bool = False
    reliable_connectivity: bool = True
    high_bandwidth: bool = False
    sensor_rate_hz: float = 1.0
    battery_days: float = 0.0  # 0: mains powered, no battery requirement


@dataclass
class Advice:
    recommendation: str  # "edge" | "cloud" | "hybrid"
    steps: list[tuple[str, str, str]] = field(default_factory=list)  # question, answer, reason
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)  # every candidate, with verdicts
    summary: str = ""


def battery_days(cell: pd.Series, rate_hz: float, dev: pd.Series) -> float | None:
    """Days the device's battery lasts running ``cell`` at ``rate_hz`` inferences per second,
    asleep in between (:func:`bench.devices.energy.battery_days_at_rate`); None when a figure is
    missing or the device cannot keep up."""
    latency, energy = cell.get("latency_p50"), cell.get("energy_uj")
    if _missing(energy) and not _missing(dev.get("active_mw")) and not _missing(latency):
        energy = energy_uj(dev["active_mw"], latency)
    figures = [energy, latency, dev.get("battery_mah"), dev.get("voltage_v")]
    if any(_missing(v) for v in figures):
        return None
    sleep = 0.0 if _missing(dev.get("sleep_mw")) else dev["sleep_mw"]
    try:
        return battery_days_at_rate(energy, latency, rate_hz, sleep, dev["battery_mah"],
                                    dev["voltage_v"])
    except ValueError:
        return None


def energy_source(cell: pd.Series, dev: pd.Series) -> str:
    """How the energy behind a cell's battery life was obtained: the record's ``energy_uj``
    method (``board``, ``emulated``, ``estimated``), ``estimated`` from the device's datasheet
    power, or "–" when there is none."""
    if not _missing(cell.get("energy_uj")):
        return str(cell.get("energy_uj__method") or "measured")
    if not _missing(dev.get("active_mw")) and not _missing(cell.get("latency_p50")):
        return "estimated (datasheet power)"
    return "–"


def battery_interval(cell: pd.Series, rate_hz: float, dev: pd.Series
                     ) -> tuple[float, float] | None:
    """The battery life at the ends of the energy's 80 % interval (an estimate's
    ``energy_uj__low``/``__high``), fewest days first; None without one."""
    low, high = cell.get("energy_uj__low"), cell.get("energy_uj__high")
    if _missing(low) or _missing(high):
        return None
    ends = [battery_days(pd.Series({**cell.to_dict(), "energy_uj": e}), rate_hz, dev)
            for e in (high, low)]
    return None if any(d is None for d in ends) else (ends[0], ends[1])  # type: ignore[return-value]


def _missing(value: Any) -> bool:
    return value is None or bool(pd.isna(value))


def candidate_cells(df: pd.DataFrame, devices: pd.DataFrame, req: Requirements) -> pd.DataFrame:
    """The model's ok cells with each requirement's verdict and ``meets_all``."""
    cells = df[(df["model"] == req.model) & (df["status"] == "ok")].copy()
    cells = cells.drop_duplicates(["model", "variant", "device"], keep="last")
    cap = devices.set_index("device") if not devices.empty else pd.DataFrame()
    need = needs(df[df["model"] == req.model]).set_index(["model", "variant"])
    rows = []
    for _, c in cells.iterrows():
        dev = cap.loc[c["device"]] if c["device"] in cap.index else pd.Series(dtype=object)
        lat = c.get("latency_p50")
        flash, ram = (need.loc[(c["model"], c["variant"])]
                      if (c["model"], c["variant"]) in need.index else (None, None))
        period_ms = 1000 / req.sensor_rate_hz if req.sensor_rate_hz > 0 else float("inf")
        row = {"cell": c["cell_id"], "run": c["run"], "variant": c["variant"],
               "device": c["device"], "method": c["method"], "latency_p50 [ms]": lat,
               "flash [KB]": flash, "ram [KB]": ram,
               "meets latency": bool(pd.notna(lat) and lat <= req.latency_budget_ms),
               "keeps up with sensor": bool(pd.notna(lat) and lat <= period_ms)}
        fcap, rcap = dev.get("flash_kb"), dev.get("ram_kb")
        row["fits flash"] = bool(fcap is None or pd.isna(fcap) or (flash is not None
                                                                   and flash <= fcap))
        row["fits RAM"] = bool(rcap is None or pd.isna(rcap) or ram is None or pd.isna(ram)
                               or ram <= rcap)
        days = battery_days(c, req.sensor_rate_hz, dev)
        row["battery days"] = days
        span = battery_interval(c, req.sensor_rate_hz, dev)
        row["battery days (80 %)"] = ("" if span is None
                                      else f"{significant(span[0])}–{significant(span[1])}")
        row["energy from"] = energy_source(c, dev)
        row["meets battery"] = req.battery_days <= 0 or (days is not None
                                                         and days >= req.battery_days)
        checks = ["meets latency", "keeps up with sensor", "fits flash", "fits RAM",
                  "meets battery"]
        row["meets_all"] = all(row[k] for k in checks)
        rows.append(row)
    return pd.DataFrame(rows)


def _cells_by_method(cells: pd.DataFrame) -> str:
    """"cells (2 measured, 1 estimated)": how the cells' figures were obtained, never calling
    an estimate a measurement."""
    noun = "cell" if len(cells) == 1 else "cells"
    if "method" not in cells:
        return noun
    counts = cells["method"].fillna("unknown").value_counts()
    return f"{noun} ({', '.join(f'{v} {k}' for k, v in counts.items())})"


def advise(df: pd.DataFrame, devices: pd.DataFrame, req: Requirements) -> Advice:
    """Walk the edge-versus-cloud decision with the measurements; recommend edge/cloud/hybrid."""
    cells = candidate_cells(df, devices, req)
    fitting = cells[cells["meets_all"]] if not cells.empty else cells
    steps: list[tuple[str, str, str]] = []
    edge_reasons = []
    fast = req.latency_budget_ms < CLOUD_ROUND_TRIP_MS
    steps.append(("Latency under 100 ms needed?", "yes" if fast else "no",
                  f"budget {req.latency_budget_ms:g} ms: a cloud round trip alone is about "
                  f"{CLOUD_ROUND_TRIP_MS:g} ms, so inference must run on the device" if fast else
                  f"budget {req.latency_budget_ms:g} ms leaves room for a cloud round trip"))
    if fast:
        edge_reasons.append("latency")
    steps.append(("Privacy-critical data?", "yes" if req.privacy_critical else "no",
                  "raw data must not leave the device" if req.privacy_critical
                  else "data may be sent off the device"))
    if req.privacy_critical:
        edge_reasons.append("privacy")
    steps.append(("High-bandwidth data?", "yes" if req.high_bandwidth else "no",
                  f"streaming raw data at {req.sensor_rate_hz:g} Hz is costly: process it locally"
                  if req.high_bandwidth else "uploading the data is affordable"))
    if req.high_bandwidth:
        edge_reasons.append("bandwidth")
    steps.append(("Reliable connectivity?", "yes" if req.reliable_connectivity else "no",
                  "the cloud is reachable when needed" if req.reliable_connectivity
                  else "the device must work offline"))
    if not req.reliable_connectivity:
        edge_reasons.append("connectivity")
    too_big = fitting.empty
    n = len(cells)
    why_big = ("no record of this model" if n == 0 else
               f"none of {n} {_cells_by_method(cells)} meets every requirement (flash, RAM, "
               "latency, sensor rate, battery)" if too_big else
               f"{len(fitting)} of {n} cells meet every requirement")
    steps.append(("Model bigger than the device?", "yes" if too_big else "no", why_big))
    if edge_reasons and not too_big:
        rec = "edge"
        summary = f"edge: needed for {', '.join(edge_reasons)}, and {why_big}"
    elif edge_reasons:
        rec = "hybrid"
        summary = (f"hybrid: {', '.join(edge_reasons)} call for the edge but {why_big}; run a "
                   "smaller model or pre-filtering on the device and the full model in the cloud")
    elif too_big:
        rec = "cloud"
        summary = f"cloud: nothing requires the edge and {why_big}"
    else:
        rec = "hybrid"
        summary = (f"hybrid: nothing requires the edge, {why_big}; infer on the device and use "
                   "the cloud for aggregation and retraining (or run it all in the cloud)")
    return Advice(rec, steps, cells, summary)
