"""The analytic cost model: latency and energy of a model on a device from its operator table.

``cycles = Σ_ops MACs_op × cycles_per_MAC(core, runtime, op class, dtype) + ops × overhead``,
``latency = cycles / clock``, ``energy = active power × latency``.

``cycles_per_MAC`` is a product of factors whose logarithms are the table's parameters::

    log cpm = c0 + runtime[rt] + core[core] − beta · log(simd_macs_per_cycle[core])
              + class[c] + runtime_class[rt, c] + dtype[d] + (round − ref) · (trend + trend[rt])

``simd_macs_per_cycle`` comes from :mod:`bench.cores` (the prior that lets an uncalibrated core
be estimated at all); every other factor is fitted by :mod:`bench.estimate.calibrate` with a
Gaussian prior (``hyperparameters`` of the table). A core or runtime missing from the table
contributes a factor 1 (its prior) and the estimate says so.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from bench.cores import get_core
from bench.estimate.analysis import OP_CLASSES, Analysis

log = logging.getLogger(__name__)

SCHEMA = 1
#: Op classes whose per-runtime factor is fitted (the others carry too few MACs in the data).
RUNTIME_CLASSES = ("conv", "depthwise", "fc")
#: Fixed log factors for arithmetic the calibration data does not cover (nominal, not fitted).
NOMINAL_DTYPE = {"int16": math.log(2.0)}  # CMSIS-NN s16 kernels: about half the int8 throughput
SOFT_FLOAT = math.log(10.0)  # float32 on a core without FPU runs in software (nominal)


class EstimateError(ValueError):
    """The estimate cannot be made (unknown core, a measured-only core, no clock, …)."""


def dtype_class(dtype: str) -> str:
    """``int8`` (also uint8 and unknown), ``int16`` or ``float32`` (also float16 weights)."""
    if dtype in ("float32", "float16", "bfloat16", "float64"):
        return "float32"
    return "int16" if dtype == "int16" else "int8"


# --- the coefficient table -----------------------------------------------------------------


@dataclass(frozen=True)
class Coefficients:
    """A versioned coefficient table (what ``edgebench calibrate`` writes)."""

    params: dict[str, float]
    rounds: dict[str, int]  # MLPerf Tiny round → index
    runtime_round: dict[str, int]  # runtime → index of its latest round in the data
    source: str = "packaged"
    meta: dict[str, Any] = field(default_factory=dict)  # the rest of the file

    @property
    def reference_round(self) -> int:
        return max(self.rounds.values(), default=0)

    def get(self, name: str) -> float:
        return float(self.params.get(name, 0.0))

    def knows(self, prefix: str, name: str) -> bool:
        return f"{prefix}.{name}" in self.params

    def provenance(self) -> dict[str, Any]:
        """What a record or an estimate says about the table it used."""
        return {"table": self.source, "schema": self.meta.get("schema"),
                "fitted": self.meta.get("fitted"),
                "data_sha256": self.meta.get("data", {}).get("sha256"),
                "systems": len(self.meta.get("systems", []))}

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str) -> Coefficients:
        if data.get("schema") != SCHEMA or "parameters" not in data:
            raise EstimateError(f"{source}: not an edgebench coefficient table of schema "
                                f"{SCHEMA} (schema: {data.get('schema')!r})")
        return cls(params={k: float(v) for k, v in data["parameters"].items()},
                   rounds={k: int(v) for k, v in data.get("rounds", {}).items()},
                   runtime_round={k: int(v) for k, v in data.get("runtime_round", {}).items()},
                   source=source, meta=data)


def load_coefficients(path: Path | str | None = None) -> Coefficients:
    """The table at ``path``, or the one shipped in the package (fitted on all the data)."""
    if path is None:
        text = resources.files("bench.estimate").joinpath("coefficients.json").read_text()
        source = "bench/estimate/coefficients.json (packaged)"
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"coefficient table {path} not found")
        text, source = path.read_text(), str(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EstimateError(f"{source}: not JSON: {exc}") from None
    return Coefficients.from_json(data, source)


# --- the formula (shared with the fit) -------------------------------------------------------


def log_cycles_per_mac(params: dict[str, float], core: str, runtime: str, op_class: str,
                       dtype: str, round_offset: float = 0.0) -> float:
    """``log`` cycles per MAC (per element for elementwise/other ops) of one op class."""
    spec = get_core(core)
    if spec.simd_macs_per_cycle <= 0:
        raise EstimateError(f"core {core!r} is measured, never estimated (it has no "
                            f"throughput prior)")
    p = params.get
    value = (p("c0", 0.0) + p(f"runtime.{runtime}", 0.0) + p(f"core.{core}", 0.0)
             - p("beta", 1.0) * math.log(spec.simd_macs_per_cycle)
             + p(f"class.{op_class}", 0.0) + p(f"runtime_class.{runtime}.{op_class}", 0.0)
             + round_offset * (p("trend", 0.0) + p(f"trend.{runtime}", 0.0)))
    d = dtype_class(dtype)
    if d == "float32":
        value += p("dtype.float32", 0.0) + (0.0 if spec.fpu else SOFT_FLOAT)
    else:
        value += NOMINAL_DTYPE.get(d, 0.0)
    return value


# --- the target and the estimate --------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What the estimate needs of a device file."""

    id: str
    core: str
    clock_mhz: float | None
    runtime: str
    active_mw: float | None = None
    flash_kb: float | None = None
    ram_kb: float | None = None

    @classmethod
    def from_device(cls, device: Any) -> Target:
        """From a :class:`bench.devices.Device` or the same as a dict (``RunRequest.device``)."""
        d = device if isinstance(device, dict) else device.model_dump()
        memory, power = d.get("memory") or {}, d.get("power") or {}
        return cls(id=str(d.get("id", "")), core=str(d.get("core", "")),
                   clock_mhz=d.get("clock_mhz"), runtime=str(d.get("runtime", "")),
                   active_mw=power.get("active_mw"), flash_kb=memory.get("flash_kb"),
                   ram_kb=memory.get("ram_kb"))


@dataclass(frozen=True)
class Footprint:
    """A runtime's own code and RAM (outside the model and its arena)."""

    code_kb: float  # the runtime's core
    per_kernel_kb: float  # each distinct operator type's kernel
    ram_kb: float
    source: str


_NOMINAL = "nominal (no published figure found; an order of magnitude, edit to suit)"
#: Runtime footprints. Only TFLite Micro's core figure is published; the rest are nominal.
FOOTPRINTS: dict[str, Footprint] = {
    "tflm": Footprint(16, 4, 4, "core runtime 16 KB on a Cortex-M3 (TensorFlow Lite for "
                                "Microcontrollers overview, tensorflow.org/lite/microcontrollers); "
                                "4 KB per kernel and 4 KB RAM nominal"),
    "x-cube-ai": Footprint(20, 2, 2, _NOMINAL),
    "plumerai": Footprint(16, 3, 2, _NOMINAL),
    "microtvm": Footprint(4, 3, 1, _NOMINAL + "; ahead-of-time compiled, no interpreter"),
    "bosch-hale": Footprint(4, 3, 1, _NOMINAL + "; code generator, no interpreter"),
    "onnc": Footprint(4, 3, 1, _NOMINAL + "; code generator, no interpreter"),
    "litert": Footprint(2048, 0, 1024, _NOMINAL + "; a shared library on Linux-class devices"),
    "leip": Footprint(2048, 0, 1024, _NOMINAL + "; a shared library on Linux-class devices"),
}

#: Activation-based arena estimate: planned activations + per-model bookkeeping. Constants
#: rounded from a fit to TFLite Micro's recorded arena of 13 models (MLPerf Tiny and the seed
#: models): median error 13 %, worst −54 % (a 3 KB arena). See docs/estimator.md.
ARENA_BASE = 1024
ARENA_PER_TENSOR = 32
ARENA_PER_CHANNEL = 16  # per-channel requantisation data of conv/depthwise layers


def arena_estimate(analysis: Analysis) -> int:
    """TFLite Micro arena estimate from the activations' live ranges (no interpreter)."""
    return (analysis.peak_activation_bytes + analysis.variable_bytes + ARENA_BASE
            + ARENA_PER_TENSOR * analysis.tensors + ARENA_PER_CHANNEL * analysis.conv_channels)


@dataclass(frozen=True)
class Estimate:
    """One estimate; ``to_json`` is what ``edgebench estimate --format json`` prints."""

    latency_ms: float
    energy_uj: float | None
    cycles: float
    breakdown_ms: dict[str, float]
    flash_bytes: int
    ram_bytes: int
    fits_flash: bool | None
    fits_ram: bool | None
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        d = self.details
        return {"model": d["model"], "device": d["device"], "method": "estimated",
                "latency_ms": self.latency_ms, "energy_uj": self.energy_uj,
                "macs": d["macs"], "params": d["params"], "flash_bytes": self.flash_bytes,
                "ram_bytes": self.ram_bytes, "fits_flash": self.fits_flash,
                "fits_ram": self.fits_ram, "cycles": round(self.cycles),
                "breakdown_ms": self.breakdown_ms, "flash": d["flash"], "ram": d["ram"],
                "energy": d["energy"], "coefficients": d["coefficients"],
                "warnings": d["warnings"]}


def _fits(need: int, capacity_kb: float | None) -> bool | None:
    return None if capacity_kb is None else need <= capacity_kb * 1024


def estimate(analysis: Analysis, target: Target, table: Coefficients | None = None, *,
             arena_bytes: int | None = None, arena_method: str = "given",
             model_name: str = "model") -> Estimate:
    """Latency, energy, flash and RAM of ``analysis`` on ``target`` (method ``estimated``).

    ``arena_bytes`` is a measured TFLite Micro arena (``arena_method`` says how it was
    obtained); without it the arena is the activation-based :func:`arena_estimate`.
    """
    table = table or load_coefficients()
    if not target.clock_mhz:
        raise EstimateError(f"device {target.id!r} has no clock_mhz: latency cannot be estimated")
    warnings = list(analysis.warnings)
    core_ok = table.knows("core", target.core)
    rt_ok = table.knows("runtime", target.runtime)
    spec = get_core(target.core)
    if not core_ok:
        warnings.append(f"core {target.core!r} is not in the calibration data: its SIMD prior "
                        f"({spec.simd_macs_per_cycle:g} MACs/cycle) alone sets its speed")
    if not rt_ok:
        warnings.append(f"runtime {target.runtime!r} is not in the calibration data: an average "
                        f"runtime's efficiency is assumed")
    rnd = table.runtime_round.get(target.runtime, table.reference_round)
    offset = rnd - table.reference_round
    overhead = math.exp(table.get("overhead"))
    cycles_by_class = dict.fromkeys(OP_CLASSES, 0.0)
    cpm: dict[str, dict[str, float]] = {}
    for op in analysis.ops:
        d = dtype_class(op.dtype)
        per_mac = cpm.setdefault(d, {}).get(op.op_class)
        if per_mac is None:
            per_mac = math.exp(log_cycles_per_mac(table.params, target.core, target.runtime,
                                                  op.op_class, d, offset))
            cpm[d][op.op_class] = per_mac
        cycles_by_class[op.op_class] += op.macs * per_mac + overhead
    cycles = sum(cycles_by_class.values())
    hz = target.clock_mhz * 1e6
    latency_ms = cycles / hz * 1e3
    energy = None if target.active_mw is None else target.active_mw * latency_ms

    fp = FOOTPRINTS.get(target.runtime, FOOTPRINTS["tflm"])
    kernels = len({op.op for op in analysis.ops})
    code = round((fp.code_kb + fp.per_kernel_kb * kernels) * 1024)
    if arena_bytes is None:
        arena_bytes, arena_method = arena_estimate(analysis), "activation-estimate"
    runtime_ram = round(fp.ram_kb * 1024)
    flash, ram = analysis.size + code, arena_bytes + runtime_ram
    details = {
        "model": model_name, "device": target.id, "macs": analysis.macs,
        "params": analysis.params,
        "flash": {"model_bytes": analysis.size, "runtime_code_bytes": code,
                  "runtime": target.runtime, "kernels": kernels,
                  "source": fp.source if target.runtime in FOOTPRINTS
                  else f"runtime {target.runtime!r} unknown: TFLite Micro's figures"},
        "ram": {"arena_bytes": arena_bytes, "arena_method": arena_method,
                "runtime_ram_bytes": runtime_ram, "source": fp.source},
        "energy": {"active_mw": target.active_mw,
                   "note": "active power × latency" if energy is not None
                   else "the device file states no active power"},
        "coefficients": {
            **table.provenance(), "core": target.core,
            "core_calibrated": core_ok, "simd_macs_per_cycle": spec.simd_macs_per_cycle,
            "runtime": target.runtime, "runtime_calibrated": rt_ok,
            "round": next((k for k, v in table.rounds.items() if v == rnd), None),
            "clock_mhz": target.clock_mhz,
            "cycles_per_mac": {d: {c: round(v, 3) for c, v in by.items()}
                               for d, by in cpm.items()},
            "overhead_cycles_per_op": round(overhead, 1)},
        "warnings": warnings}
    return Estimate(
        latency_ms=latency_ms, energy_uj=energy, cycles=cycles,
        breakdown_ms={c: v / hz * 1e3 for c, v in cycles_by_class.items() if v},
        flash_bytes=flash, ram_bytes=ram, fits_flash=_fits(flash, target.flash_kb),
        fits_ram=_fits(ram, target.ram_kb), details=details)


def measure_arena(path: str) -> int:
    """TFLite Micro's recorded arena for the model at ``path`` (run in a worker: native code)."""
    from bench.runners.tflm import measure_arena as tflm_arena

    return tflm_arena(Path(path).read_bytes(), path)

