"""The 80 % interval of an estimate: ``exp(log ŷ + z · sd)``, ``z`` the percentiles of
standardised held-out residuals (see :mod:`bench.estimate.crossval`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

LEVEL = 0.8
GAUSS_Z = 1.2815515655446004  # the 90th percentile of a standard normal


@dataclass
class Interval:
    """How an estimate's 80 % interval is drawn: ``exp(log ŷ + z · sd)`` for z in
    ``(z_low, z_high)``, the percentiles of standardised held-out residuals."""

    z_low: float = -GAUSS_Z
    z_high: float = GAUSS_Z
    level: float = LEVEL
    residuals: int = 0  # how many held-out residuals set it (0: the Gaussian default)
    source: str = "Gaussian default (not calibrated)"

    @classmethod
    def from_residuals(cls, res: Any, source: str, by: str | None = None,
                       minimum: int = 20) -> Interval:
        """From held-out rows (a frame with ``latency_ms``, ``log_pred`` and ``sd``); with
        ``by`` (a column, e.g. ``family``) each of its groups weighs the same, however many
        rows it has. Fewer than ``minimum`` rows give the Gaussian default."""
        z = ((np.log(res["latency_ms"]) - res["log_pred"]) / res["sd"]).to_numpy()
        if len(z) < minimum:
            return cls(source=f"Gaussian default ({len(z)} held-out residuals are too few)")
        weights = None
        if by is not None:
            weights = (1.0 / res.groupby(by)[by].transform("size")).to_numpy(float)
        tail = (1 - LEVEL) / 2
        return cls(_quantile(z, tail, weights), _quantile(z, 1 - tail, weights), LEVEL, len(z),
                   source)

    @classmethod
    def widest(cls, parts: list[Interval], source: str) -> Interval:
        """Each bound the widest of ``parts``' (each must hold for every kind of evidence)."""
        return cls(min(i.z_low for i in parts), max(i.z_high for i in parts), LEVEL,
                   sum(i.residuals for i in parts), source)

    def bounds(self, log_pred: np.ndarray | float, sd: np.ndarray | float
               ) -> tuple[Any, Any]:
        return np.exp(log_pred + self.z_low * sd), np.exp(log_pred + self.z_high * sd)

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "z_low": round(self.z_low, 4),
                "z_high": round(self.z_high, 4), "residuals": self.residuals,
                "source": self.source}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Interval:
        return cls(float(data["z_low"]), float(data["z_high"]), float(data.get("level", LEVEL)),
                   int(data.get("residuals", 0)), str(data.get("source", "")))


def _quantile(values: np.ndarray, q: float, weights: np.ndarray | None) -> float:
    """The ``q`` quantile of ``values``, each counting ``weights`` (equal when None): linear
    between the midpoints of the sorted values' cumulative weights."""
    if weights is None:
        return float(np.quantile(values, q))
    order = np.argsort(values)
    v, w = values[order], weights[order]
    mid = (np.cumsum(w) - w / 2) / w.sum()
    return float(np.interp(q, mid, v))
