"""Cycles per instruction per core: what turns emulated instruction counts into latency.

QEMU counts instructions, not cycles. ``cpi.json`` holds, per core, the factor fitted by
``benchmarks/cpi_calibration.py`` between the instructions the MLPerf Tiny reference models
take in the emulator and the published TFLite Micro (CMSIS-NN) latencies of boards with that
core: a calibration factor (wait states, caches and kernel releases included), not the core's
architectural CPI. A core without a fitted factor uses :data:`FALLBACK_CPI` and says so.
"""

from __future__ import annotations

import json
import statistics
from functools import cache
from importlib import resources
from typing import Any

from bench.board.reference_models import BENCHMARKS

TABLE = "cpi.json"
#: Cycles per instruction for a core the table lacks (a single-issue core without wait states).
FALLBACK_CPI = 1.0


@cache
def table() -> dict[str, Any]:
    """The packaged table: ``{"cores": {core: {"cpi": …, …}}, …}`` (empty when absent)."""
    path = resources.files("bench.firmware").joinpath(TABLE)
    if not path.is_file():
        return {"cores": {}}
    return json.loads(path.read_text())


def cpi_for(core: str) -> tuple[float, dict[str, Any]]:
    """The core's cycles per instruction and where it comes from (for a record's details)."""
    entry = table()["cores"].get(core)
    if entry is None:
        return FALLBACK_CPI, {"cpi": FALLBACK_CPI, "calibrated": False,
                              "note": f"no published TFLM results fitted for {core}: "
                                      f"{FALLBACK_CPI} cycle per instruction assumed"}
    return float(entry["cpi"]), {"calibrated": True, **entry,
                                 "fitted": table().get("fitted"),
                                 "method": table().get("method")}


# --- fitting (benchmarks/emulated_boards.py) -----------------------------------------------------

#: The published results' core names of the cores QEMU emulates.
PUBLISHED_CORES = {"Cortex-M3": "cortex-m3", "Cortex-M4F": "cortex-m4f", "Cortex-M7": "cortex-m7",
                   "Cortex-M33": "cortex-m33", "Cortex-M55": "cortex-m55"}


def published_tflm(csv: str) -> list[dict[str, Any]]:
    """The published TFLite Micro latencies of emulated cores (MLPerf Tiny results CSV)."""
    import pandas as pd

    rows = pd.read_csv(csv)
    rows = rows[(rows["stack"] == "tflm") & rows["core"].isin(PUBLISHED_CORES)
                & rows["benchmark"].isin(BENCHMARKS) & rows["latency_ms"].notna()]
    return [{"core": PUBLISHED_CORES[r.core], "system": r.system, "version": r.version,
             "software": r.software, "benchmark": r.benchmark, "clock_mhz": float(r.clock_mhz),
             "latency_ms": float(r.latency_ms)} for r in rows.itertuples()]


def _geomean(values: list[float]) -> float:
    import math

    return math.exp(sum(math.log(v) for v in values) / len(values))


def fit(rows: list[dict[str, Any]], instructions: dict[tuple[str, str], float]
        ) -> dict[str, dict[str, Any]]:
    """Per core: cycles per instruction = the geometric mean over its published rows of
    (latency × clock) ÷ emulated instructions, and the leave-one-model-out error (the latency
    of each benchmark predicted from the other benchmarks' fit), in % of the published figure.
    """
    out: dict[str, dict[str, Any]] = {}
    for core in sorted({r["core"] for r in rows}):
        used = []
        for r in rows:
            count = instructions.get((core, r["benchmark"]))
            if r["core"] == core and count:
                cycles = r["latency_ms"] * 1e-3 * r["clock_mhz"] * 1e6
                used.append({**r, "instructions": round(count), "factor": cycles / count})
        if not used:
            continue
        errors = []
        for bench in sorted({u["benchmark"] for u in used}):
            rest = [u["factor"] for u in used if u["benchmark"] != bench]
            if not rest:
                continue
            cpi = _geomean(rest)
            for u in (u for u in used if u["benchmark"] == bench):
                predicted = u["instructions"] * cpi / (u["clock_mhz"] * 1e3)
                errors.append(100 * abs(predicted / u["latency_ms"] - 1))
        out[core] = {
            "cpi": round(_geomean([u["factor"] for u in used]), 4),
            "rows": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in u.items()
                      if k != "core"} for u in used],
            "releases": sorted({u["version"] for u in used}),
            "loo_median_abs_pct": round(statistics.median(errors), 1) if errors else None,
            "loo_max_abs_pct": round(max(errors), 1) if errors else None}
    return out
