"""The estimate: latency and energy of a model on a device, with an 80 % interval; flash and RAM.

``cycles = Σ_{dtype, class} MACs × cycles_per_MAC + ops × cycles_per_op``, ``latency =
cycles / clock``, ``energy = power while inferring × latency`` — the power from the most
trusted source the device has (records, measured, published, datasheet, core typical: see
:mod:`bench.estimate.power`), scaled to its clock and supply, and its interval carries that
source's spread beside the latency's (see :mod:`bench.estimate.design` for
the factors of ``cycles_per_MAC``). The interval is ``exp(log latency + z · sd)`` for the
table's calibrated ``z`` quantiles, ``sd`` combining the residual scatter, the fit's parameter
covariance, the prior width of anything the data never saw (core, runtime, board) and the
release's distance from the data (:mod:`bench.devices.releases`). A model the table was
fitted on gets the ``known_model`` interval, any other model the wider ``new_model`` one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.devices.cores import get_core
from bench.devices.releases import normalise, resolve
from bench.estimate.analysis import Analysis
from bench.estimate.coefficients import Coefficients, load_coefficients
from bench.estimate.design import (
    TERMS,
    EstimateError,
    Query,
    Workload,
    board_key,
    dtype_class,
    matrices,
    terms,
)
from bench.estimate.fit import predict
from bench.estimate.footprint import FOOTPRINTS, arena_estimate
from bench.estimate.interval import doubt_of
from bench.estimate.power import PowerFigure, PowerSpec, energy_bounds
from bench.estimate.power import resolve as resolve_power
from bench.results.metrics import Metric, metric

__all__ = ["Coefficients", "Estimate", "EstimateError", "Target", "dtype_class", "estimate",
           "load_coefficients"]


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
    runtime_version: str | None = None
    #: the device file's ``power`` block (supply, the figure's clock and supply, static part)
    power: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def board(self) -> str:
        return board_key(self.id)

    @classmethod
    def from_device(cls, device: Any) -> Target:
        """From a :class:`bench.devices.device.Device` or the same as a dict
        (``RunRequest.device``)."""
        d = device if isinstance(device, dict) else device.model_dump()
        memory, power = d.get("memory") or {}, d.get("power") or {}
        return cls(id=str(d.get("id", "")), core=str(d.get("core", "")),
                   clock_mhz=d.get("clock_mhz"), runtime=str(d.get("runtime", "")),
                   active_mw=power.get("active_mw"), flash_kb=memory.get("flash_kb"),
                   ram_kb=memory.get("ram_kb"), runtime_version=d.get("runtime_version"),
                   power=power or None)

    def power_figure(self, table: Coefficients) -> PowerFigure | None:
        """The power its energy uses: the most trusted source (:mod:`bench.estimate.power`)."""
        if not self.clock_mhz:
            return None
        return resolve_power(self.power_spec(), self.board, self.core, table.power)

    def power_spec(self) -> PowerSpec:
        """The device's power figures (``active_mw`` alone when no block was given)."""
        block = self.power if self.power is not None else {"active_mw": self.active_mw}
        return PowerSpec.from_block(block, float(self.clock_mhz or 0.0))


@dataclass(frozen=True)
class Estimate:
    """One estimate: ``latency`` (ms) and ``energy`` (µJ, None without a power figure) are the
    :class:`~bench.results.metrics.Metric` a record stores, method ``estimated`` with the bounds
    of their 80 % interval; ``to_json`` is what ``edgebench estimate --format json`` prints."""

    latency: Metric
    energy: Metric | None
    cycles: float
    breakdown_ms: dict[str, float]
    flash_bytes: int
    ram_bytes: int
    fits_flash: bool | None
    fits_ram: bool | None
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The command's JSON: each figure flattened to ``<name>``, ``<name>_low`` and
        ``<name>_high`` (``latency_ms``, ``energy_uj``; None without energy), as README shows."""
        d = self.details
        return {"model": d["model"], "device": d["device"], "method": self.latency.method,
                **_flat("latency_ms", self.latency), **_flat("energy_uj", self.energy),
                "interval": d["interval"], "release": d["release"],
                "macs": d["macs"], "params": d["params"], "flash_bytes": self.flash_bytes,
                "ram_bytes": self.ram_bytes, "fits_flash": self.fits_flash,
                "fits_ram": self.fits_ram, "cycles": round(self.cycles),
                "breakdown_ms": self.breakdown_ms, "flash": d["flash"], "ram": d["ram"],
                "energy": d["energy"], "coefficients": d["coefficients"],
                "warnings": d["warnings"]}


def _flat(name: str, figure: Metric | None) -> dict[str, float | None]:
    """``{name: value, name_low: low, name_high: high}`` of ``figure`` (all None without it)."""
    if figure is None:
        return {name: None, f"{name}_low": None, f"{name}_high": None}
    return {name: figure.value, f"{name}_low": figure.low, f"{name}_high": figure.high}


def _fits(need: int, capacity_kb: float | None) -> bool | None:
    return None if capacity_kb is None else need <= capacity_kb * 1024


def _warnings(table: Coefficients, target: Target, query: Query, kind: str) -> list[str]:
    out = []
    spec = get_core(target.core)
    if not table.knows("core", target.core):
        out.append(f"core {target.core!r} is not in the calibration data: its SIMD prior "
                   f"({spec.simd_macs_per_cycle:g} MACs/cycle) alone sets its speed (a wider "
                   f"interval)")
    if not table.knows("runtime", target.runtime):
        out.append(f"runtime {target.runtime!r} is not in the calibration data: an average "
                   f"runtime's efficiency is assumed (a wider interval)")
    if query.release.source in ("nearby releases", "runtime pooled"):
        out.append(f"runtime release: {query.release.note}")
    if kind == "new_model":
        out.append("not one of the calibration models: the interval is the one measured "
                   "leaving a model out")
    return out


def estimate(analysis: Analysis, target: Target, table: Coefficients | None = None, *,
             arena_bytes: int | None = None, arena_method: str = "given",
             model_name: str = "model") -> Estimate:
    """Latency and energy (with 80 % intervals), flash and RAM of ``analysis`` on ``target``.

    ``arena_bytes`` is a measured TFLite Micro arena (``arena_method`` says how it was
    obtained); without it the arena is the activation-based :func:`arena_estimate`.
    """
    table = table or load_coefficients()
    if not target.clock_mhz:
        raise EstimateError(f"device {target.id!r} has no clock_mhz: latency cannot be estimated")
    fitted = table.fitted
    release = resolve(fitted.slots.get(target.runtime, []), normalise(target.runtime_version))
    query = Query(target.core, target.runtime, float(target.clock_mhz), release,
                  Workload.from_analysis(analysis), target.board)
    kind = "known_model" if analysis.sha256 in table.model_hashes else "new_model"
    doubt = doubt_of(release.source)
    interval = table.intervals[kind].for_doubt(doubt)
    pred = predict(fitted, [query])
    log_ms, sd = float(pred.log_ms[0]), float(pred.sd[0])
    latency = math.exp(log_ms)

    tm = terms(query, fitted.structure)
    names = sorted(tm.names | set(fitted.names))
    params = fitted.params
    theta = np.array([params.get(n, 0.0) for n in names])
    m = matrices([tm], names)
    e, o = m._cycles(theta)
    hz = target.clock_mhz * 1e6
    cycles = float(e.sum() + o[0])
    breakdown: dict[str, float] = {}
    cpm: dict[str, dict[str, float]] = {}
    for t, (d, c) in enumerate(TERMS):
        if tm.macs[t] > 0:
            breakdown[c] = breakdown.get(c, 0.0) + float(e[0, t]) / hz * 1e3
            cpm.setdefault(d, {})[c] = round(float(e[0, t]) / tm.macs[t], 3)
    breakdown["operator calls"] = float(o[0]) / hz * 1e3
    energy = None
    figure = target.power_figure(table)
    if figure is not None:
        energy = metric("energy_uj", figure.mw * latency, "estimated", interval=energy_bounds(
            figure.mw, log_ms, (interval.z_low, interval.z_high), sd, figure.log_sd))

    fp = FOOTPRINTS.get(target.runtime, FOOTPRINTS["tflm"])
    kernels = len({op.op for op in analysis.ops})
    code = round((fp.code_kb + fp.per_kernel_kb * kernels) * 1024)
    if arena_bytes is None:
        arena_bytes, arena_method = arena_estimate(analysis), "activation-estimate"
    runtime_ram = round(fp.ram_kb * 1024)
    flash, ram = analysis.size + code, arena_bytes + runtime_ram
    spec = get_core(target.core)
    details = {
        "model": model_name, "device": target.id, "macs": analysis.macs,
        "params": analysis.params,
        "interval": {"level": interval.level, "kind": kind, "doubt": doubt,
                     "sd_log": round(sd, 4),
                     "z": [round(interval.z_low, 3), round(interval.z_high, 3)],
                     "calibrated_on": interval.source},
        "release": {"runtime": target.runtime, "stated": target.runtime_version,
                    **release.to_json()},
        "flash": {"model_bytes": analysis.size, "runtime_code_bytes": code,
                  "runtime": target.runtime, "kernels": kernels,
                  "source": fp.source if target.runtime in FOOTPRINTS
                  else f"runtime {target.runtime!r} unknown: TFLite Micro's figures"},
        "ram": {"arena_bytes": arena_bytes, "arena_method": arena_method,
                "runtime_ram_bytes": runtime_ram, "source": fp.source},
        "energy": ({**figure.to_json(), "active_mw": target.active_mw,
                    "note": "power while inferring × latency; the interval adds the power "
                            "figure's spread (power_log_sd, by its source) to the latency's"}
                   if figure is not None else
                   {"active_mw": None, "source": None,
                    "note": "no power figure: the device file states no power.active_mw, and "
                            "the table has none for its board or core"}),
        "coefficients": {
            **table.provenance(), "core": target.core,
            "core_calibrated": table.knows("core", target.core),
            "simd_macs_per_cycle": spec.simd_macs_per_cycle,
            "runtime": target.runtime,
            "runtime_calibrated": table.knows("runtime", target.runtime),
            "board": target.board, "board_calibrated": table.knows("board", target.board),
            "clock_mhz": target.clock_mhz, "cycles_per_mac": cpm,
            "cycles_per_op": round(float(o[0]) / max(tm.ops, 1), 1)},
        "warnings": [*analysis.warnings, *_warnings(table, target, query, kind)]}
    return Estimate(
        latency=metric("latency_p50", latency, "estimated",
                       interval=interval.bounds(log_ms, sd)),
        energy=energy, cycles=cycles,
        breakdown_ms={c: v for c, v in breakdown.items() if v},
        flash_bytes=flash, ram_bytes=ram, fits_flash=_fits(flash, target.flash_kb),
        fits_ram=_fits(ram, target.ram_kb), details=details)

