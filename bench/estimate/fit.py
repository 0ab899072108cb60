"""The fit: maximum a posteriori least squares on log latency, its Laplace covariance, and
predictions with a standard deviation.

Every parameter has a Gaussian prior (:data:`PRIORS`); the release effects of a runtime follow
a random walk in release order (a step of sd ``Structure.release_step``, drifting by ``trend``
per MLPerf Tiny round). A refit from a shipped table uses that table's posterior (its
parameters and covariance) as the prior instead. The covariance is the inverse Hessian at the
optimum with the rows weighted by the residual standard deviation — how well each parameter is
pinned down — and an unseen core, runtime or board keeps its prior's width, so estimates are
wider where data is thin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from bench.devices.releases import Slot, param, round_key, version_key
from bench.estimate.analysis import OP_CLASSES
from bench.estimate.design import (
    DTYPES,
    RELEASE_CLASSES,
    Matrices,
    Query,
    Structure,
    Terms,
    matrices,
    terms,
)

#: What a deep layer's outputs and gathered elements add to its MACs' cost: (1.33 + 87.3 / 288 +
#: 7.00 / 32) / 1.33 for a 3×3, 32 → 32 conv, in emulated instructions (see below).
SHAPE_SHARE = 1.39
#: name → (prior mean, prior standard deviation), in log units except ``beta``.
PRIORS: dict[str, tuple[float, float]] = {
    "c0": (math.log(2.0), 2.0),  # conv cycles/MAC on a 1-MAC/cycle core: weak prior
    "beta": (1.0, 0.3),  # cycles/MAC scale as simd_macs_per_cycle ** -beta
    "overhead": (math.log(1000.0), 1.0),  # cycles per operator invocation
    "dtype.float32": (math.log(2.5), 0.5),
    "class.pointwise": (0.0, 0.5),  # a 1×1 conv MAC against a k×k conv MAC
    # Against a *bare* conv MAC (its outputs and gathered elements priced apart): the old
    # priors against a conv MAC with those costs folded in (depthwise 2, fc 1.5, element 4) ×
    # what they add to a deep layer's MAC, 1.39 (a 3×3, 32 → 32 conv, emulated as above)
    "class.depthwise": (math.log(2.0 * SHAPE_SHARE), 0.7),
    "class.fc": (math.log(1.5 * SHAPE_SHARE), 0.7),
    "class.elementwise": (math.log(4.0 * SHAPE_SHARE), 1.0),  # per element
    "class.other": (math.log(4.0 * SHAPE_SHARE), 1.0),
    # per output element of a conv, depthwise or 1x1 conv, and per element a k×k conv gathers
    # (its im2col), against a conv MAC. The published results barely tell them apart from a
    # MAC (every reference layer sums hundreds of products per output), so the conv and 1×1
    # ones come from emulated instruction counts of single-layer models (TFLite Micro with
    # CMSIS-NN: 1.33 instructions per conv MAC, 87.3 per conv output, 41.2 per 1×1 output,
    # 7.00 per gathered element; ``python benchmarks/layer_costs.py``).
    "class.out_conv": (math.log(65.6), 0.5),
    "class.out_pointwise": (math.log(31.0), 0.5),
    "class.out_depthwise": (math.log(8.0), 1.0),
    "class.patch_conv": (math.log(5.3), 0.5),
    "trend": (0.0, 0.3),  # drift of release effects per MLPerf Tiny round
    "runtime.*": (0.0, 0.7),
    "core.*": (0.0, 0.3),
    "runtime_class.*": (0.0, 0.3),
    "board.*": (0.0, 0.3),  # a board's own factor (memory wait states, caches, clock tree)
    "config.*": (0.0, 0.5),  # a build configuration (min_ram, max_performance, native)
    "overhead.*": (0.0, 0.7),  # a runtime's cost of an operator call against the average
    # TFLite Micro's call: about 600 instructions (≈ 1,600 cycles at the emulated M4F's CPI,
    # ``benchmarks/layer_costs.py``) against the average runtime's fitted 7,000–8,000 cycles
    "overhead.tflm": (math.log(0.2), 0.3),
}
FIXED = ["c0", "beta", "overhead", "dtype.float32", "trend",
         *(f"class.{c}" for c in OP_CLASSES[1:])]  # always fitted (the rest: when used)


def prior(name: str) -> tuple[float, float]:
    """Prior (mean, sd) of an independent parameter."""
    return PRIORS.get(name) or PRIORS[name.split(".")[0] + ".*"]


def _walked(name: str) -> bool:
    return name.startswith(("release.", "release_class."))


@dataclass
class Fitted:
    """A fit: parameters, their covariance, the residual sd, and the release slots."""

    names: list[str]
    theta: np.ndarray
    cov: np.ndarray
    sigma: float  # residual standard deviation of log latency on the fitted rows
    slots: dict[str, list[Slot]]
    rounds: dict[str, int]
    structure: Structure

    @property
    def params(self) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.names, self.theta, strict=True)}

    def sd(self, name: str) -> float:
        return math.sqrt(self.cov[self.names.index(name), self.names.index(name)])


def _param_names(all_terms: list[Terms], slots: dict[str, list[Slot]], structure: Structure,
                 extra: list[str]) -> list[str]:
    names = set(FIXED) | set(extra)
    for tm in all_terms:
        names |= tm.names
    for rt, ss in slots.items():
        names |= {param(rt, s.name) for s in ss}
        if structure.release_class:
            names |= {f"release_class.{rt}.{s.name}.{c}" for s in ss for c in RELEASE_CLASSES}
    fixed = [n for n in FIXED if n in names]
    return fixed + sorted(names - set(fixed))


def _prior_rows(names: list[str], slots: dict[str, list[Slot]], rounds: dict[str, int],
                structure: Structure, base: Fitted | None) -> tuple[np.ndarray, np.ndarray]:
    """The prior as linear residuals ``P θ − b`` (each row already divided by its sd)."""
    at = {n: i for i, n in enumerate(names)}
    rows: list[np.ndarray] = []
    b: list[float] = []
    covered: set[str] = set()
    if base is not None:  # the shipped posterior: whitened by its covariance
        shared = [n for n in base.names if n in at]
        idx = [base.names.index(n) for n in shared]
        vals, vecs = np.linalg.eigh(base.cov[np.ix_(idx, idx)])
        white = (vecs / np.sqrt(np.maximum(vals, 1e-10))).T
        theta0 = base.theta[idx]
        for w in white:
            row = np.zeros(len(names))
            row[[at[n] for n in shared]] = w
            rows.append(row)
            b.append(float(w @ theta0))
        covered = set(shared)

    def add(coefs: dict[str, float], target: float, sd: float) -> None:
        row = np.zeros(len(names))
        for n, v in coefs.items():
            row[at[n]] = v / sd
        rows.append(row)
        b.append(target / sd)

    for n in names:
        if n not in covered and not _walked(n):
            mean, sd = prior(n)
            add({n: 1.0}, mean, sd)
    step = structure.release_step
    for rt, ss in slots.items():
        chains = [[param(rt, s.name) for s in ss]]
        if structure.release_class:
            chains += [[f"release_class.{rt}.{s.name}.{c}" for s in ss] for c in RELEASE_CLASSES]
        for ci, chain in enumerate(chains):
            if all(n in covered for n in chain):
                continue
            add({chain[0]: 1.0}, 0.0, step)
            for k in range(1, len(chain)):
                gap = _gap(ss[k - 1], ss[k], rounds)
                coefs = {chain[k]: 1.0, chain[k - 1]: -1.0}
                if ci == 0 and gap > 0:
                    coefs["trend"] = -gap
                add(coefs, 0.0, step * math.sqrt(max(1.0, gap)))
    return np.array(rows), np.array(b)


def _gap(a: Slot, b: Slot, rounds: dict[str, int]) -> float:
    if a.round is None or b.round is None:
        return 1.0
    return float(rounds.get(b.round, 0) - rounds.get(a.round, 0))


def fit(queries: list[Query], log_ms: np.ndarray, slots: dict[str, list[Slot]],
        rounds: dict[str, int], structure: Structure, base: Fitted | None = None) -> Fitted:
    """MAP fit of ``log_ms`` (natural log of latency in ms) for ``queries``; deterministic."""
    from scipy.optimize import least_squares

    if not queries:
        raise ValueError("no usable rows to fit")
    all_terms = [terms(q, structure) for q in queries]
    names = _param_names(all_terms, slots, structure, base.names if base else [])
    m = matrices(all_terms, names)
    P, b = _prior_rows(names, slots, rounds, structure, base)
    scale = structure.data_sd

    def residuals(theta: np.ndarray) -> np.ndarray:
        return np.concatenate([(m.log_ms(theta)[0] - log_ms) / scale, P @ theta - b])

    def jacobian(theta: np.ndarray) -> np.ndarray:
        return np.vstack([m.log_ms(theta)[1] / scale, P])

    start = np.linalg.lstsq(P, b, rcond=None)[0]  # the prior's mode
    theta = least_squares(residuals, start, jac=jacobian, method="lm", xtol=1e-10,
                          ftol=1e-10, max_nfev=2000).x
    if structure.robust:  # Huber weights on the rows, refitted until they settle
        for _ in range(3):
            r = np.abs(m.log_ms(theta)[0] - log_ms) / scale
            w = np.sqrt(np.minimum(1.0, structure.robust / np.maximum(r, 1e-9)))
            theta = least_squares(lambda t, w=w: np.concatenate([
                w * (m.log_ms(t)[0] - log_ms) / scale, P @ t - b]), theta,
                jac=lambda t, w=w: np.vstack([w[:, None] * m.log_ms(t)[1] / scale, P]),
                method="lm", xtol=1e-10, ftol=1e-10, max_nfev=2000).x
    pred, jac = m.log_ms(theta)
    resid = pred - log_ms
    sigma = float(np.sqrt(np.mean(resid ** 2))) if len(resid) >= 20 or base is None else 0.0
    if base is not None:
        sigma = max(sigma, base.sigma)
    sigma = max(sigma, 0.02)
    hessian = jac.T @ jac / sigma ** 2 + P.T @ P
    cov = np.linalg.inv(hessian)
    return Fitted(names, theta, (cov + cov.T) / 2, sigma, slots, rounds, structure)


@dataclass
class Prediction:
    """Log latency of each query and its predictive standard deviation (log units)."""

    log_ms: np.ndarray
    sd: np.ndarray
    param_sd: np.ndarray  # the part from the parameters (and unseen priors, releases)


def predict(fitted: Fitted, queries: list[Query]) -> Prediction:
    """Predictions for ``queries`` with the fit's uncertainty: residual sd, parameter
    covariance, prior widths of parameters the fit never saw, and the release's extra
    variance (random-walk steps away from the data, or the spread of pooled releases)."""
    all_terms = [terms(q, fitted.structure) for q in queries]
    unseen = sorted(set().union(*(tm.names for tm in all_terms)) - set(fitted.names))
    names = fitted.names + unseen
    theta = np.concatenate([fitted.theta, [prior(n)[0] for n in unseen]])
    cov = np.zeros((len(names), len(names)))
    k = len(fitted.names)
    cov[:k, :k] = fitted.cov
    cov[k:, k:] = np.diag([prior(n)[1] ** 2 for n in unseen])
    m: Matrices = matrices(all_terms, names)
    log_ms, jac = m.log_ms(theta)
    var = np.einsum("np,pq,nq->n", jac, cov, jac)
    share = m.release_share(theta)
    values = fitted.params
    for i, q in enumerate(queries):
        extra = q.release.steps * fitted.structure.release_step ** 2
        if q.release.spread and len(q.release.weights) > 1:
            effects = {s: values[param(q.runtime, s)] for s in q.release.weights}
            mean = sum(w * effects[s] for s, w in q.release.weights.items())
            extra += sum(w * (effects[s] - mean) ** 2 for s, w in q.release.weights.items())
        var[i] += share[i] ** 2 * extra
    return Prediction(log_ms, np.sqrt(var + fitted.sigma ** 2), np.sqrt(var))


# --- slots from data --------------------------------------------------------------------------


def slots_of(rows: Any) -> dict[str, list[Slot]]:
    """The release slots of each runtime in ``rows`` (a frame with ``runtime``, ``slot``,
    ``release``, ``version`` and ``group`` columns; rows without a slot make none). A named
    release seen outside the MLPerf Tiny rounds is placed after the release before it."""
    out: dict[str, list[Slot]] = {}
    seen = rows[rows["slot"].map(lambda v: isinstance(v, str))]
    for (rt, slot), g in seen.groupby(["runtime", "slot"], sort=True):
        rounds = [v for v in g["version"] if isinstance(v, str)]
        release = g["release"].iloc[0]
        out.setdefault(str(rt), []).append(Slot(
            str(slot), release if isinstance(release, str) else None,
            min(rounds, key=round_key) if rounds else None, int(len(g)),
            int(g["group"].nunique())))
    return {rt: _placed(ss) for rt, ss in out.items()}


def _placed(slots: list[Slot]) -> list[Slot]:
    named = sorted((s for s in slots if s.release and s.round),
                   key=lambda s: version_key(s.release))
    placed = []
    for s in slots:
        if s.round is None:
            before = [n for n in named if version_key(n.release) <= version_key(s.release)]
            anchor = before[-1] if before else (named[0] if named else None)
            s = replace(s, round=anchor.round if anchor else None)
        placed.append(s)
    return sorted(placed, key=lambda s: s.order)


def to_json(fitted: Fitted, digits: int = 6) -> dict[str, Any]:
    """The fit as the parameters, covariance and release slots of a coefficient table."""
    return {
        "parameters": {n: round(float(v), digits) for n, v in zip(fitted.names, fitted.theta,
                                                                   strict=True)},
        "covariance": {"names": fitted.names,
                       "matrix": [[float(f"{v:.5g}") for v in row] for row in fitted.cov]},
        "sigma": round(fitted.sigma, 5),
        "releases": {rt: [s.to_json() for s in ss] for rt, ss in sorted(fitted.slots.items())},
        "rounds": fitted.rounds, "structure": fitted.structure.to_json(),
        "dtypes": list(DTYPES),
    }


def from_json(data: dict[str, Any]) -> Fitted:
    """The fit stored in a coefficient table."""
    names = list(data["covariance"]["names"])
    params = data["parameters"]
    cov = np.array(data["covariance"]["matrix"], dtype=float)
    return Fitted(names, np.array([float(params[n]) for n in names]), (cov + cov.T) / 2,
                  float(data["sigma"]),
                  {rt: [Slot.from_json(s) for s in ss] for rt, ss in data["releases"].items()},
                  {k: int(v) for k, v in data.get("rounds", {}).items()},
                  Structure.from_json(data.get("structure", {})))
