"""Cycles per instruction per core: what turns emulated instruction counts into latency.

QEMU counts instructions, not cycles. ``cpi.json`` holds, per core, the factor fitted by
``benchmarks/cpi_calibration.py`` between the instructions the MLPerf Tiny reference models
take in the emulator and the published TFLite Micro (CMSIS-NN) latencies of boards with that
core: a calibration factor (wait states, caches and kernel releases included), not the core's
architectural CPI. A core without a fitted factor uses :data:`FALLBACK_CPI` and says so.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

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
