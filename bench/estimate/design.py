"""The cost model as a linear design inside an exponential: what each row of data (or one
estimate) adds to each parameter.

``cycles = Σ_{dtype d, class c} MACs[d, c] · exp(z[d, c] · θ + const[d]) + ops · exp(overhead)``,
``log latency_ms = log cycles − log(clock kHz)``, where ``z[d, c]`` holds, per parameter, its
coefficient in ``log cycles per MAC``::

    c0 + runtime[rt] + Σ_s w_s · release[rt, s] + core[core] − beta · log(simd) + board[id]
       + dtype[d] + class[c] + runtime_class[rt, L(c)] (+ Σ_s w_s · release_class[rt, s, L(c)])

where ``L(c)`` is the layer a class belongs to (:data:`LAYER_OF`: a conv's outputs and
gathered elements are the conv's).

The same code prices one estimate (:func:`terms` of one query) and the whole data set in the
fit (:func:`matrices`), so they cannot disagree.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.devices.cores import get_core
from bench.devices.releases import Resolution, param
from bench.estimate.analysis import OP_CLASSES, Analysis

DTYPES = ("int8", "int16", "float32")
#: The classes an op is priced by: the analysis's op classes with 1×1 convs apart, and the
#: output elements of convolutions (requantisation and loop set-up per output, whatever the
#: depth of its sum: what makes a thin layer dear per MAC).
OUTPUT_CLASSES = ("out_conv", "out_pointwise", "out_depthwise")
#: The elements a k×k convolution gathers per output pixel, summed over its pixels (MACs ÷
#: output channels: what CMSIS-NN's im2col copies; dear per MAC when a layer has few filters).
#: ``CONV_2D`` only: a transpose or 3-D conv gathers nothing the sweep measured.
PATCH_CLASSES = ("patch_conv",)
COST_CLASSES = ("conv", "pointwise", *OP_CLASSES[1:], *OUTPUT_CLASSES, *PATCH_CLASSES)
#: What the shape classes count instead of MACs (every other class counts MACs or elements).
SHAPE_UNITS = {**dict.fromkeys(OUTPUT_CLASSES, "output"),
               **dict.fromkeys(PATCH_CLASSES, "gathered element")}
#: Op classes whose per-runtime factor is fitted (the others carry too few MACs in the data).
RUNTIME_CLASSES = ("conv", "depthwise", "fc")
#: Op classes whose cost may change from one release to the next (a structural option).
RELEASE_CLASSES = ("depthwise",)
#: The layer each shape class belongs to: a runtime's or release's factor on a kind of layer
#: scales all its cost (MACs, outputs, gathered elements), not its MACs alone.
LAYER_OF = {"out_conv": "conv", "patch_conv": "conv", "out_pointwise": "pointwise",
            "out_depthwise": "depthwise"}
#: Fixed log factors for arithmetic the calibration data does not cover (nominal, not fitted).
NOMINAL_DTYPE = {"int16": math.log(2.0)}  # CMSIS-NN s16 kernels: about half the int8 throughput
SOFT_FLOAT = math.log(10.0)  # float32 on a core without FPU runs in software (nominal)
TERMS = [(d, c) for d in DTYPES for c in COST_CLASSES]


def board_key(name: str) -> str:
    """A board's name as one key: lower case, letters and digits, without the ``-Q``/``-P``
    package suffix (``NUCLEO-H7A3ZI-Q`` and device id ``nucleo-h7a3zi-q`` → ``nucleoh7a3zi``)."""
    name = re.sub(r"[-_ ]?[qp]$", "", str(name).lower())
    return re.sub(r"[^a-z0-9]", "", name)


class EstimateError(ValueError):
    """The estimate cannot be made (unknown core, a measured-only core, no clock, …)."""


def dtype_class(dtype: str) -> str:
    """``int8`` (also uint8 and unknown), ``int16`` or ``float32`` (also float16 weights)."""
    if dtype in ("float32", "float16", "bfloat16", "float64"):
        return "float32"
    return "int16" if dtype == "int16" else "int8"


@dataclass(frozen=True)
class Workload:
    """What a model costs, before pricing: MACs per (dtype class, op class) and operators."""

    macs: dict[tuple[str, str], float]
    ops: int

    @classmethod
    def from_analysis(cls, analysis: Analysis) -> Workload:
        macs: dict[tuple[str, str], float] = {}
        for op in analysis.ops:
            k = (dtype_class(op.dtype), op.cost_class)
            macs[k] = macs.get(k, 0.0) + op.macs
            if f"out_{op.cost_class}" in OUTPUT_CLASSES:
                k = (dtype_class(op.dtype), f"out_{op.cost_class}")
                macs[k] = macs.get(k, 0.0) + op.output_elements
            if f"patch_{op.cost_class}" in PATCH_CLASSES and op.kernel and op.channels:
                k = (dtype_class(op.dtype), f"patch_{op.cost_class}")
                macs[k] = macs.get(k, 0.0) + op.macs / op.channels
        return cls(macs, len(analysis.ops))

    def as_dtype(self, dtype: str) -> Workload:
        """The same graph run entirely in ``dtype`` (a float submission of an int8 model)."""
        d = dtype_class(dtype)
        macs: dict[tuple[str, str], float] = {}
        for (_, c), m in self.macs.items():
            macs[(d, c)] = macs.get((d, c), 0.0) + m
        return Workload(macs, self.ops)

    @property
    def mac_count(self) -> float:
        """The MACs (the shape classes count outputs and gathered elements, not MACs)."""
        return sum(m for (_, c), m in self.macs.items() if c not in SHAPE_UNITS)

    def macs_by_class(self) -> dict[str, float]:
        return {c: sum(m for (_, k), m in self.macs.items() if k == c) for c in COST_CLASSES}


@dataclass(frozen=True)
class Structure:
    """Structural options of the model (chosen by cross-validation inside the training data)."""

    release_step: float = 0.3  # sd of one random-walk step between releases (log units)
    release_class: bool = False  # a per-release depthwise factor
    data_sd: float = 1.0  # weight of a row against the priors in the fit (log units)
    runtime_overhead: bool = False  # a per-runtime factor on the cost of an operator call
    pointwise: bool = False  # 1×1 convs priced apart from other convs
    outputs: bool = False  # a cost per output element of convolutions
    patches: bool = False  # a cost per element a k×k convolution gathers (its im2col)
    robust: float = 0.0  # Huber threshold on |residual| / data_sd (0: plain least squares)

    def to_json(self) -> dict[str, Any]:
        return {"release_step": self.release_step, "release_class": self.release_class,
                "data_sd": self.data_sd, "runtime_overhead": self.runtime_overhead,
                "pointwise": self.pointwise, "robust": self.robust, "outputs": self.outputs,
                "patches": self.patches}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Structure:
        return cls(release_step=float(data.get("release_step", 0.3)),
                   release_class=bool(data.get("release_class", False)),
                   data_sd=float(data.get("data_sd", 1.0)),
                   runtime_overhead=bool(data.get("runtime_overhead", False)),
                   pointwise=bool(data.get("pointwise", False)),
                   outputs=bool(data.get("outputs", False)),
                   patches=bool(data.get("patches", False)),
                   robust=float(data.get("robust", 0.0)))


@dataclass(frozen=True)
class Query:
    """One row to price: a device (core, clock, runtime, release, board) and a workload."""

    core: str
    runtime: str
    clock_mhz: float
    release: Resolution
    workload: Workload
    board: str | None = None  # a board with its own fitted effect (``board.<id>``)
    config: str | None = None  # a stated build configuration (``config.<name>``)


@dataclass
class Terms:
    """A query as coefficients: ``z[t]`` (name → coefficient) and ``const[t]`` per term ``t``
    of :data:`TERMS`, with the MACs of each term, the operator count and log clock (kHz)."""

    z: list[dict[str, float]]
    overhead: dict[str, float]  # coefficients of log cycles per operator call
    const: np.ndarray
    macs: np.ndarray
    ops: float
    log_khz: float
    names: set[str] = field(default_factory=set)


def terms(q: Query, structure: Structure) -> Terms:
    """The coefficients of ``q`` (see the module docstring)."""
    spec = get_core(q.core)
    if spec.simd_macs_per_cycle <= 0:
        raise EstimateError(f"core {q.core!r} is measured, never estimated (it has no "
                            f"throughput prior)")
    if not q.clock_mhz:
        raise EstimateError("no clock_mhz: latency cannot be estimated")
    base = {"c0": 1.0, f"runtime.{q.runtime}": 1.0, f"core.{q.core}": 1.0,
            "beta": -math.log(spec.simd_macs_per_cycle)}
    if q.board:
        base[f"board.{q.board}"] = 1.0
    if q.config:
        base[f"config.{q.config}"] = 1.0
    for slot, w in q.release.weights.items():
        base[param(q.runtime, slot)] = w
    zs, const, macs = [], np.zeros(len(TERMS)), np.zeros(len(TERMS))
    for t, (d, c) in enumerate(TERMS):
        z = dict(base)
        if d == "float32":
            z["dtype.float32"] = 1.0
            const[t] = 0.0 if spec.fpu else SOFT_FLOAT
        else:
            const[t] = NOMINAL_DTYPE.get(d, 0.0)
        priced = "conv" if c == "pointwise" and not structure.pointwise else c
        if priced != "conv":
            z[f"class.{priced}"] = 1.0
        layer = LAYER_OF.get(c, c)
        layer = "conv" if layer == "pointwise" and not structure.pointwise else layer
        if layer in RUNTIME_CLASSES or layer == "pointwise":
            z[f"runtime_class.{q.runtime}.{layer}"] = 1.0
        if structure.release_class and layer in RELEASE_CLASSES:
            for slot, w in q.release.weights.items():
                z[f"release_class.{q.runtime}.{slot}.{layer}"] = w
        zs.append(z)
        macs[t] = q.workload.macs.get((d, c), 0.0)
        if (c in OUTPUT_CLASSES and not structure.outputs) or (
                c in PATCH_CLASSES and not structure.patches):
            macs[t] = 0.0
    overhead = {"overhead": 1.0}
    if structure.runtime_overhead:
        overhead[f"overhead.{q.runtime}"] = 1.0
    names = {n for t, z in enumerate(zs) if macs[t] > 0 for n in z} | set(overhead)
    return Terms(zs, overhead, const, macs, float(q.workload.ops), math.log(q.clock_mhz * 1e3),
                 names)


@dataclass
class Matrices:
    """Many queries as arrays over a parameter list: ``Z`` (rows × terms × params)."""

    names: list[str]
    Z: np.ndarray
    Zo: np.ndarray  # rows × params: log cycles per operator call
    const: np.ndarray
    macs: np.ndarray
    ops: np.ndarray
    log_khz: np.ndarray

    def _cycles(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        expo = np.einsum("ntp,p->nt", self.Z, theta) + self.const
        return (self.macs * np.exp(np.minimum(expo, 50.0)),
                self.ops * np.exp(np.minimum(self.Zo @ theta, 50.0)))

    def log_ms(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log latency of every row and its Jacobian (rows × params)."""
        e, o = self._cycles(theta)
        cycles = e.sum(axis=1) + o
        jac = np.einsum("nt,ntp->np", e / cycles[:, None], self.Z)
        jac += (o / cycles)[:, None] * self.Zo
        return np.log(cycles) - self.log_khz, jac

    def release_share(self, theta: np.ndarray) -> np.ndarray:
        """Per row, the share of cycles a release effect scales (all but operator overhead)."""
        e, o = self._cycles(theta)
        return e.sum(axis=1) / (e.sum(axis=1) + o)


def matrices(all_terms: list[Terms], names: list[str]) -> Matrices:
    """Stack :class:`Terms` over ``names`` (a name missing from ``names`` raises KeyError)."""
    at = {n: i for i, n in enumerate(names)}
    Z = np.zeros((len(all_terms), len(TERMS), len(names)))
    Zo = np.zeros((len(all_terms), len(names)))
    for i, tm in enumerate(all_terms):
        for t, z in enumerate(tm.z):
            if tm.macs[t] > 0:
                for n, v in z.items():
                    Z[i, t, at[n]] = v
        for n, v in tm.overhead.items():
            Zo[i, at[n]] = v
    return Matrices(names, Z, Zo,
                    np.array([tm.const for tm in all_terms]).reshape(-1, len(TERMS)),
                    np.array([tm.macs for tm in all_terms]).reshape(-1, len(TERMS)),
                    np.array([tm.ops for tm in all_terms]),
                    np.array([tm.log_khz for tm in all_terms]))
