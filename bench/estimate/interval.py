"""The 80 % interval of an estimate: ``exp(log ŷ + z · sd)``, ``z`` the percentiles of
standardised held-out residuals (see :mod:`bench.estimate.crossval`).

``z`` is widened per **source of doubt** where the held-out residuals allow: an estimate
whose runtime release has results (``release known``) and one whose release the data lack
(``release not in the data``: nearby releases, an unseen runtime) stray
differently from their ``sd``; one global pair of percentiles left the second too narrow. Each
source with at least :data:`DOUBT_MINIMUM` residuals takes each bound the wider of its own
percentile and the overall one. Never narrower: narrowing ``release known`` to its own inner
percentiles covered 73 % of held-out systems instead of 80 % — the inner folds hold out a
fifth of the systems, so their ``sd`` carries more parameter uncertainty than a
one-system-out estimate's, and their standardised residuals come out too small.

``release not in the data`` is then sized again (:meth:`Interval.sized_by`) on inner folds
that hold out **whole releases**, one at a time, as the outer by-release evaluation does: its
own percentiles, each release weighing the same. Sized on the systems whose release their
fold happened to lack, a few far-off systems set it, wider than a missing release needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

LEVEL = 0.8
GAUSS_Z = 1.2815515655446004  # the 90th percentile of a standard normal
#: Fewest held-out residuals of one source of doubt that get their own ``z``.
DOUBT_MINIMUM = 10
#: Sources of doubt, by how an estimate's runtime release was resolved
#: (:attr:`bench.devices.releases.Resolution.source`).
#: A device file that states no release pools the runtime's releases: no held-out row is
#: ever pooled (every published result names its round), so it keeps the overall ``z`` and
#: its width comes from the releases' spread in its ``sd``.
DOUBTS = {"release": "release known", "nearby releases": "release not in the data",
          "runtime unseen": "release not in the data", "runtime pooled": "release not stated"}
#: The source of doubt of a release the data lack: its ``z`` is sized on whole releases held
#: out (:meth:`Interval.sized_by`), not on the systems whose release their fold lacked.
RELEASE_DOUBT = "release not in the data"


def doubt_of(resolution: str) -> str:
    """The source of doubt of an estimate whose release was resolved as ``resolution``."""
    return DOUBTS.get(resolution, "release not in the data")


@dataclass
class Interval:
    """How an estimate's 80 % interval is drawn: ``exp(log ŷ + z · sd)`` for z in
    ``(z_low, z_high)``, the percentiles of standardised held-out residuals."""

    z_low: float = -GAUSS_Z
    z_high: float = GAUSS_Z
    level: float = LEVEL
    residuals: int = 0  # how many held-out residuals set it (0: the Gaussian default)
    source: str = "Gaussian default (not calibrated)"
    #: source of doubt → (z_low, z_high, residuals), where it had enough residuals of its own
    by_doubt: dict[str, tuple[float, float, int]] = field(default_factory=dict)

    def for_doubt(self, doubt: str) -> Interval:
        """This interval for one source of doubt (:func:`doubt_of`): its own ``z`` where
        calibrated, else the overall one."""
        if doubt not in self.by_doubt:
            return self
        lo, hi, n = self.by_doubt[doubt]
        return Interval(lo, hi, self.level, n, f"{self.source} ({doubt}: {n} residuals)")

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
        low, high = _quantile(z, tail, weights), _quantile(z, 1 - tail, weights)
        by_doubt: dict[str, tuple[float, float, int]] = {}
        if "resolution" in res:
            doubts = res["resolution"].map(doubt_of).to_numpy()
            for doubt in sorted(set(doubts)):
                m = doubts == doubt
                if m.sum() >= DOUBT_MINIMUM:
                    w = None if weights is None else weights[m]
                    by_doubt[doubt] = (min(_quantile(z[m], tail, w), low),
                                       max(_quantile(z[m], 1 - tail, w), high), int(m.sum()))
        return cls(low, high, LEVEL, len(z), source, by_doubt)

    def sized_by(self, doubt: str, res: Any, how: str, by: str) -> Interval:
        """This interval with ``doubt``'s ``z`` the percentiles of the held-out rows ``res``
        of that source of doubt alone (each ``by`` group weighing the same), neither widened
        to the overall ``z`` nor to what other folds gave it: ``res`` holds out the unit that
        source of doubt is about (e.g. whole releases, ``how`` says so). With fewer than
        :data:`DOUBT_MINIMUM` such rows it is left as it is."""
        if len(res) == 0 or "resolution" not in res:
            return self
        res = res[res["resolution"].map(doubt_of).to_numpy() == doubt]
        if len(res) < DOUBT_MINIMUM:
            return self
        z = ((np.log(res["latency_ms"]) - res["log_pred"]) / res["sd"]).to_numpy()
        weights = (1.0 / res.groupby(by)[by].transform("size")).to_numpy(float)
        tail = (1 - LEVEL) / 2
        low, high = _quantile(z, tail, weights), _quantile(z, 1 - tail, weights)
        if not low < high:
            return self
        units = res[by].nunique()
        return Interval(self.z_low, self.z_high, self.level, self.residuals,
                        f"{self.source}; {doubt}: {how} ({len(z)} residuals of {units})",
                        {**self.by_doubt, doubt: (low, high, len(z))})

    @classmethod
    def widest(cls, parts: list[Interval], source: str) -> Interval:
        """Each bound the widest of ``parts``' (each must hold for every kind of evidence)."""
        doubts = {d for i in parts for d in i.by_doubt}
        by_doubt = {d: (min(i.for_doubt(d).z_low for i in parts),
                        max(i.for_doubt(d).z_high for i in parts),
                        sum(i.by_doubt.get(d, (0, 0, 0))[2] for i in parts)) for d in doubts}
        return cls(min(i.z_low for i in parts), max(i.z_high for i in parts), LEVEL,
                   sum(i.residuals for i in parts), source, by_doubt)

    def bounds(self, log_pred: np.ndarray | float, sd: np.ndarray | float
               ) -> tuple[Any, Any]:
        return np.exp(log_pred + self.z_low * sd), np.exp(log_pred + self.z_high * sd)

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "z_low": round(self.z_low, 4),
                "z_high": round(self.z_high, 4), "residuals": self.residuals,
                "source": self.source,
                "by_doubt": {d: {"z_low": round(lo, 4), "z_high": round(hi, 4), "residuals": n}
                             for d, (lo, hi, n) in sorted(self.by_doubt.items())}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Interval:
        by_doubt = {str(d): (float(v["z_low"]), float(v["z_high"]), int(v.get("residuals", 0)))
                    for d, v in (data.get("by_doubt") or {}).items()}
        for d, (lo, hi, _) in by_doubt.items():
            if not lo < hi:
                raise ValueError(f"intervals: by_doubt {d!r} has z_low {lo} ≥ z_high {hi}")
        return cls(float(data["z_low"]), float(data["z_high"]), float(data.get("level", LEVEL)),
                   int(data.get("residuals", 0)), str(data.get("source", "")), by_doubt)


def _quantile(values: np.ndarray, q: float, weights: np.ndarray | None) -> float:
    """The ``q`` quantile of ``values``, each counting ``weights`` (equal when None): linear
    between the midpoints of the sorted values' cumulative weights."""
    if weights is None:
        return float(np.quantile(values, q))
    order = np.argsort(values)
    v, w = values[order], weights[order]
    mid = (np.cumsum(w) - w / 2) / w.sum()
    return float(np.interp(q, mid, v))
