"""Power from the calibration data: a core's typical mW per MHz during an inference, and how
far a system's measured power strays from that typical figure (what widens energy intervals).

Power of a row = energy ÷ latency (µJ / ms = mW); per MHz, divided by its clock.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # an estimate imports this module, and pandas costs it 0.35 s
    import pandas as pd

#: The spread assumed where the data has no core measured on two systems (log units: ×/÷ 1.5).
DEFAULT_LOG_SD = math.log(1.5)


def _per_mhz(rows: pd.DataFrame) -> pd.DataFrame:
    e = rows.dropna(subset=["energy_uj"])
    return e.assign(mw_per_mhz=e["energy_uj"] / e["latency_ms"] / e["clock_mhz"])


def _by_core(e: pd.DataFrame) -> pd.Series:
    return e.groupby("core")["mw_per_mhz"].median()


def per_mhz(rows: pd.DataFrame) -> pd.Series:
    """Core → median mW/MHz over the rows with energy."""
    return _by_core(_per_mhz(rows))


def log_sd(rows: pd.DataFrame) -> float:
    """The root mean square of log(system's median mW/MHz ÷ its core's median), over the cores
    measured on two systems or more: how far a typical power figure is from a board's own.
    :data:`DEFAULT_LOG_SD` where no core has two systems."""
    e = _per_mhz(rows)
    systems = e.groupby(["core", "group"])["mw_per_mhz"].median().reset_index()
    several = systems.groupby("core")["group"].transform("size") >= 2
    systems = systems[several]
    if systems.empty:
        return DEFAULT_LOG_SD
    typical = systems["core"].map(_by_core(e))
    return float(np.sqrt(np.mean(np.log(systems["mw_per_mhz"] / typical) ** 2)))


def energy_bounds(mw: float | np.ndarray, log_ms: float | np.ndarray,
                  z: tuple[float, float], sd: float | np.ndarray, power_sd: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Energy interval (µJ) for power ``mw`` and log latency ``log_ms`` with sd ``sd``: the
    latency's ``z`` quantiles over both uncertainties, ``sqrt(sd² + power_sd²)``."""
    both = np.sqrt(np.asarray(sd) ** 2 + power_sd ** 2)
    return mw * np.exp(log_ms + z[0] * both), mw * np.exp(log_ms + z[1] * both)
