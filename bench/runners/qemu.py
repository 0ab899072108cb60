"""The ``qemu`` runner: emulated Cortex-M boards running the real firmware.

For each artifact it builds the firmware a user would flash (TFLite Micro with CMSIS-NN kernels
for the device's core, the model as a C array, the official MLPerf Tiny API; see
:mod:`bench.firmware`), boots it under ``qemu-system-arm -icount shift=0`` and drives it over
the MLPerf Tiny serial protocol with the serial runner's link, as a real board.

Connection options (device file ``connection:``): ``machine`` (the QEMU machine; default: the
one emulating the device's core), ``timeout_s`` (30, per response, wall clock),
``min_window_s`` (0.05: a timed window lasts at least this much *virtual* time, 50 M
instructions), ``windows`` (5), ``cpi`` (cycles per instruction, instead of the cycle model's)
and ``instruction_classes`` (false: count instructions by class with edgebench's QEMU plugin
while measuring, :mod:`bench.firmware.classes`).

``evaluate`` (method ``emulated``): ``arena_used`` as TFLite Micro reports it on the 32-bit
target, ``firmware_flash`` and ``firmware_ram`` from the ELF, task metrics from the firmware's
outputs on the test split, ``output_max_diff`` of its raw outputs against LiteRT (on up to 100
inputs, fewer for large inputs or outputs) and, on the input whose outputs differ most, the
per-layer agreement (``details["agreement"]``, :mod:`bench.runners.board_agreement`): each
operator's output printed by the firmware (``tensor N%``) against LiteRT's intermediate
tensors, naming the first layer beyond one quantized step.
``measure``: ``instructions`` per inference (the firmware's clock under icount: 1 ns per
instruction), and ``latency_*`` derived from them as instructions × cycles per instruction ÷ the
device's clock, the cycles per instruction from the core's cycle model
(:mod:`bench.firmware.cycles`) applied to the inference's instruction classes, or, counted
without them, to the reference models' mix (``details["cycles"]`` says which, and the model's
``note``), and the per-layer profile (``details["layers"]``, :mod:`bench.results.layers`): one
more invoke with the firmware's profiler on (``layers%``), each operator's instructions from the
clock's ticks (a tick is ``1e9 / sysclk_hz`` instructions), checked to sum to the inference's
``instructions`` within 1 %. A firmware that does not answer ``layers%`` gives
``details["layers_reason"]``.
With ``instruction_classes``, ``details["instruction_classes"]`` holds the mean per inference of
each instruction class, taken branches and memory accesses by region, and each layer its own
(``classes``, and its ``cycles``); a plugin that does not build or load leaves the plain
instruction counts and says why in ``details["instruction_classes_warning"]``.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from bench.artifacts.tflite_info import inspect
from bench.board.link import BoardError, connect
from bench.datasets.base import Dataset
from bench.errors import PositiveFloat, PositiveInt, Strict, one_of
from bench.firmware import classes
from bench.firmware.cycles import CycleModel, CycleModelError, memory_system, model_for
from bench.firmware.emulator import boot
from bench.firmware.image import build_for_device, templates_digest
from bench.firmware.machines import DEFAULT_MACHINE, MACHINES
from bench.firmware.sources import PINS
from bench.results.metrics import metric, task_metrics
from bench.runners.base import MetricMap, Runner, RunRequest
from bench.runners.board_agreement import agreement_samples, output_agreement
from bench.runners.io import (
    Detailed,
    latency_stats,
    load_artifact,
    sample_inputs,
)
from bench.runners.layers import firmware_layers
from bench.runners.litert import LiteRTModel
from bench.runners.serial import board_predict, input_spec, output_elements, timed_windows
from bench.runners.tflm import refusal

log = logging.getLogger(__name__)

METHOD = "emulated"
NS_PER_INSTRUCTION = 1.0  # -icount shift=0: 2**0 ns of virtual time per instruction
#: QEMU's UART takes a character at a time, ≈ 50 µs each way in (an input loads as hex, 2
#: characters a byte: a 27 KB VWW input takes seconds) and ≈ 5 µs out.
IN_CHAR_S, OUT_CHAR_S = 50e-6, 5e-6
HOW = ("the emulated firmware prints each operator's first output as the operator ends "
       "(`tensor N%`, TFLite Micro's profiler hook)")


class QemuOptions(Strict):
    """An emulated board's options (device file ``connection:``), with their defaults."""

    machine: Annotated[str, one_of("QEMU machine", MACHINES)] | None = Field(
        None, description="QEMU machine (default: the one emulating the device's core)")
    timeout_s: PositiveFloat = 30.0
    min_window_s: PositiveFloat = Field(0.05, description="virtual seconds per timed window")
    windows: PositiveInt = 5
    cpi: PositiveFloat | None = Field(None, description="cycles per instruction (default: the "
                                                        "core's cycle model's)")
    instruction_classes: bool = Field(False, description="count instructions by class and "
                                                         "memory accesses by region (QEMU plugin)")


def options(request: RunRequest) -> QemuOptions:
    return QEMU.parse_options(request.options)  # type: ignore[return-value]


def machine_name(device: dict[str, Any], opts: dict[str, Any]) -> str:
    """The QEMU machine of a device: its option, else the one emulating its core."""
    name = opts.get("machine") or DEFAULT_MACHINE.get(str(device.get("core")))
    if name is None:
        known = ", ".join(f"{core} ({m})" for core, m in sorted(DEFAULT_MACHINE.items()))
        raise ValueError(f"no QEMU machine emulates core {device.get('core')!r}: name one with "
                         f"`machine` (emulated cores: {known})")
    return name


def firmware(request: RunRequest) -> Any:
    """The artifact's firmware for the device (built and cached on first use)."""

    opts = options(request)
    machine = MACHINES[machine_name(request.device, request.options)]
    core = request.device.get("core")
    if core and core != machine.core:
        raise ValueError(f"the device's core is {core}, but {machine.name} emulates "
                         f"{machine.core}")
    memory = request.device.get("memory") or {}
    log.debug("firmware for %s on %s (%s)", request.artifact.name, machine.name, opts)
    return build_for_device(load_artifact(request.artifact), machine.name,
                            memory.get("flash_kb"), memory.get("ram_kb"), request.artifact.name)


@contextlib.contextmanager
def board(request: RunRequest, built: Any, plugin: str | None = None,
          warnings: list[str] | None = None) -> Iterator[Any]:
    """The firmware booted under QEMU (with the ``-plugin`` option ``plugin``) and handshaken
    over the protocol (a ``BoardLink``); why QEMU runs without the plugin goes to ``warnings``.

    A protocol failure while QEMU is gone is reported as QEMU's exit (killed, crashed)."""

    opts = options(request)
    with boot(built.elf, MACHINES[built.machine], plugin) as emulator:
        if emulator.plugin_error and warnings is not None:
            warnings.append(emulator.plugin_error)
        try:
            with connect({"port": emulator.port, "timeout_s": opts.timeout_s,
                          "model": built.model_id}) as link:
                link.expect_outputs(output_elements(request))
                yield link
        except BoardError as exc:
            reason = emulator.exit_reason(wait_s=2.0)
            if reason is None:
                raise
            raise RuntimeError(f"{reason} during the run; {exc}") from None


def evaluate(request: RunRequest) -> MetricMap:
    """Arena, firmware sizes, agreement with LiteRT (outputs, and per layer on the input
    whose outputs differ most: ``details["agreement"]``) and task metrics, from the firmware."""

    built = firmware(request)  # refuses a model without exactly one input
    data = load_artifact(request.artifact)
    lite = LiteRTModel(data, {}, str(request.artifact))  # the reference, and the I/O specs
    spec = lite.in_specs[0]
    out = Detailed({
        "arena_used": metric("arena_used", built.arena_used, METHOD),
        "firmware_flash": metric("firmware_flash", built.flash_used, METHOD),
        "firmware_ram": metric("firmware_ram", built.ram_used, METHOD)})
    samples = agreement_samples(int(np.prod(spec.shape)) * spec.dtype.itemsize,
                                sum(int(np.prod(o.shape)) for o in lite.out_specs),
                                IN_CHAR_S, OUT_CHAR_S)
    inputs = sample_inputs(request.dataset, [spec], samples, request.seed)
    with board(request, built) as link:
        out["output_max_diff"], agreement = output_agreement(
            link, lite, data, inputs, METHOD, str(request.artifact), HOW, OUT_CHAR_S)
        out.details = {"agreement": agreement}
        if request.dataset is not None:

            out.update(task_metrics(Dataset.load(request.dataset), board_predict(link, spec),
                                    METHOD))
    return out


def measure(request: RunRequest) -> MetricMap:
    """Instructions per inference from ``infer N W`` windows on the firmware's clock, and the
    latency they imply on the device (instructions × the cycle model's cycles per instruction
    ÷ clock); with ``instruction_classes``, the same run counted by the QEMU plugin, whose
    classes give the cycles."""

    opts = options(request)
    built = firmware(request)
    spec = input_spec(request)
    inputs = sample_inputs(request.dataset, [spec], opts.windows, request.seed)
    warnings: list[str] = []
    with tempfile.TemporaryDirectory(prefix="edgebench-classes-") as tmp:
        out_file = str(Path(tmp) / "classes.json")  # the plugin writes it
        plugin = _plugin(built, out_file, warnings) if opts.instruction_classes else None
        with board(request, built, plugin, warnings) as link:
            virtual_ns = timed_windows(link, inputs, request.warmup, opts.windows,
                                       opts.min_window_s, 1)
            instructions = [ns / NS_PER_INSTRUCTION for ns in virtual_ns]
            total = statistics.median(instructions)
            details = firmware_layers(link, load_artifact(request.artifact), total,
                                      "instructions", METHOD, _instructions_per_tick,
                                      "timed windows", request.artifact.name,
                                      opts.timeout_s)
        if plugin and not warnings:
            _add_classes(details, out_file, total, warnings)
    if warnings:
        details["instruction_classes_warning"] = (
            "; ".join(warnings) + " (plain instruction counts only)")
    cpi = _cycles(details, request.device, MACHINES[built.machine].core, opts.cpi)
    clock_hz = float(request.device.get("clock_mhz") or 0) * 1e6
    out = Detailed({"instructions": metric("instructions", total, METHOD)})
    if clock_hz > 0:
        out.update(latency_stats([i * cpi / clock_hz * 1e9 for i in instructions], METHOD))
    out.details = details
    return out


def _cycles(details: dict[str, Any], device: dict[str, Any], core: str,
            cpi: float | None) -> float:
    """The cycles per instruction of the inference (the device's ``cpi``, else the cycle
    model's on its classes, else on the reference mix), and ``details["cycles"]``: how."""
    memory = memory_system(device)
    if cpi:
        details["cycles"] = {"cpi": cpi, "from": "the device's `cpi` option"}
        return cpi
    model = model_for(core)
    counted = details.get("instruction_classes")
    out: dict[str, Any] = {"note": model.note, "memory": memory.describe()}
    if counted and counted.get("memory"):
        total = model.cycles(counted, memory)
        cpi = total / counted["instructions"]
        out.update(cycles=total, cpi=cpi, **{"from": "the inference's instruction classes"})
        for layer in details.get("layers") or []:
            if "classes" in layer and "memory" in layer:
                layer["cycles"] = _layer_cycles(model, layer, memory)
    else:
        mix = model.reference_mix()
        cpi = model.reference_cpi(memory) or 1.0
        out.update(cpi=cpi, **{"from": (
            f"the reference models' instruction mix on {mix} (instructions counted without "
            f"classes)" if mix else "no reference mix for the core: 1 cycle per instruction "
                                    "(count instruction_classes for the cycle model)")})
    details["cycles"] = out
    return cpi


def _layer_cycles(model: CycleModel, layer: dict[str, Any], memory: Any) -> float | None:
    try:
        return model.cycles(layer, memory)
    except (CycleModelError, KeyError):
        return None


def _instructions_per_tick(hz: int) -> float:
    """Instructions per tick of the firmware's clock (it counts instructions, 1 ns each)."""
    return 1e9 / hz / NS_PER_INSTRUCTION


def _plugin(built: Any, out_file: str, warnings: list[str]) -> str | None:
    """The ``-plugin`` option counting ``built`` into ``out_file``; None (and why, in
    ``warnings``) when the plugin cannot be built."""
    try:
        return classes.plugin_option(built.elf, MACHINES[built.machine], Path(out_file))
    except classes.PluginError as exc:
        log.warning("no instruction classes: %s", exc)
        warnings.append(str(exc))
        return None


def _add_classes(details: dict[str, Any], out_file: str, total: float,
                 warnings: list[str]) -> None:
    """The plugin's counts into ``details``: per inference, and per layer when the plugin saw
    as many operators as the profile has layers."""
    try:
        counts = classes.read_counts(Path(out_file))
        details["instruction_classes"] = classes.per_inference(counts, total)
    except classes.PluginError as exc:
        warnings.append(str(exc))
        return
    ops = classes.per_operator(counts)
    layers = details.get("layers") or []
    if layers and len(ops) == len(layers):
        for layer, op in zip(layers, ops, strict=True):
            layer["classes"] = op["classes"]
            layer["branch_taken"] = op["branch_taken"]
            if "memory" in op:
                layer["memory"] = op["memory"]


def unsupported(tflite: bytes, options: dict[str, Any]) -> str | None:
    """Skip reasons known before building: what TFLite Micro cannot run (float16, hybrid and
    int4 kernels it lacks), not one input."""

    try:
        info = inspect(tflite)
    except ValueError:
        return None  # a corrupt artifact is a failure, reported by the phase itself
    reason = refusal(info)
    if reason:
        return reason
    if len(info.inputs) != 1:
        return (f"the MLPerf Tiny protocol loads one input; the model has "
                f"{len(info.inputs)}")
    return None


def versions() -> dict[str, str]:
    """What the firmware and its evaluation depend on: the pins, compiler, QEMU, LiteRT."""
    import subprocess
    from importlib.metadata import PackageNotFoundError, version


    out = {pin.name: pin.commit[:12] for pin in PINS}
    out["firmware"] = templates_digest()
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        with contextlib.suppress(OSError, subprocess.SubprocessError, IndexError):
            out[tool] = subprocess.run([tool, "--version"], capture_output=True, text=True,
                                       timeout=10, check=False).stdout.splitlines()[0]
    with contextlib.suppress(PackageNotFoundError):
        out["ai-edge-litert"] = version("ai-edge-litert")
    return out


def provenance(device: dict[str, Any], opts: dict[str, Any]) -> dict[str, Any]:
    """``details["emulated"]``: the machine, and how latency is derived (the cycle model)."""

    try:
        name = machine_name(device, opts)
    except ValueError as exc:
        return {"emulated": {"error": str(exc)}}
    machine = MACHINES[name]
    memory = memory_system(device)
    if opts.get("cpi"):
        model: dict[str, Any] = {"note": "the device's `cpi`", "cpi": float(opts["cpi"])}
    else:
        cycle_model = model_for(machine.core)
        model = {"note": cycle_model.note, "status": cycle_model.status,
                 "costs": cycle_model.costs, "source": cycle_model.source,
                 "reference_cpi": cycle_model.reference_cpi(memory)}
    return {"emulated": {
        "machine": name, "core": machine.core, "clock_mhz": device.get("clock_mhz"),
        "latency": "derived: cycles from the core's cycle model (instruction classes × costs, "
                   "flash wait states) ÷ clock (QEMU counts instructions, not cycles)",
        "memory": memory.describe(), "cycle_model": model}}


QEMU = Runner(
    name="qemu",
    evaluate="bench.runners.qemu:evaluate",
    measure="bench.runners.qemu:measure",
    method=METHOD,
    options=QemuOptions,
    targets="board",
    unsupported=unsupported,
    versions=versions,
    provenance=provenance,
    description="the real TFLite Micro + CMSIS-NN firmware for the device's core, emulated in "
                "QEMU over the MLPerf Tiny protocol: instructions (latency via a cycle model), "
                "32-bit arena, firmware flash/RAM, accuracy",
)
