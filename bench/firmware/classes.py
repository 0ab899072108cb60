"""Instructions by class and memory accesses by region, from edgebench's QEMU TCG plugin.

The plugin (``plugin/insn_classes.c``, QEMU's plugin API version 1) is compiled on first use
with the host's C compiler (``$CC``, else ``cc``) into the firmware cache, keyed by its source
and the compiler's version. Loaded into ``qemu-system-arm`` (:func:`plugin_option`), it counts
every executed Thumb-2 instruction in one class of :data:`CLASSES`, the branches taken (the next
executed instruction is not the fall-through), and data accesses by region of the machine's
memory map (its ``code`` region is the flash, its ``ram`` the SRAM). It sums the counters over
the invokes the firmware marks (``eb_invoke_begin``/``eb_invoke_end``) and per operator index
(``eb_op_begin``/``eb_op_end``), and writes them to a JSON file after each marked invoke.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.artifacts.cache import key
from bench.firmware import FirmwareError, cache_root
from bench.firmware.library import TOOL_PREFIX
from bench.firmware.lock import locked
from bench.firmware.machines import Machine

log = logging.getLogger(__name__)

SOURCE = Path(__file__).parent / "plugin" / "insn_classes.c"
LIBRARY = "insn_classes.so"
CFLAGS = ("-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-Wall")
#: Instruction classes, in the plugin's order; every executed instruction is in exactly one.
CLASSES = ("load_store", "load_store_multiple", "multiply", "simd", "fp", "mve", "divide",
           "branch", "other")
MEMORY = ("flash_read", "flash_write", "sram_read", "sram_write", "other_read", "other_write")
MARKERS = ("eb_invoke_begin", "eb_invoke_end", "eb_op_begin", "eb_op_end")
SOURCE_NAME = "QEMU TCG plugin (edgebench insn_classes)"


class PluginError(FirmwareError):
    """The plugin could not be built, or the firmware cannot be counted with it."""


def _compiler_version(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30,
                             check=False).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise PluginError(f"no host C compiler to build the QEMU plugin ({cc}: {exc})") from None
    return out.splitlines()[0] if out else cc


def plugin_library(source: Path = SOURCE, cc: str | None = None) -> Path:
    """The plugin's shared library, compiled on first use with ``cc`` (``$CC``, else ``cc``)
    and cached by content; a :class:`PluginError` with the compiler's reason when it does not
    build."""
    cc = cc or os.environ.get("CC") or "cc"
    if shutil.which(cc) is None:
        raise PluginError(f"no host C compiler ({cc}) to build the QEMU plugin")
    text = source.read_bytes()
    folder = cache_root() / "plugins" / key({
        "source": hashlib.sha256(text).hexdigest(), "cc": _compiler_version(cc),
        "flags": list(CFLAGS)})[:20]
    built = folder / LIBRARY
    if built.exists():
        return built
    with locked(folder.with_name(folder.name + ".lock")):
        if built.exists():
            return built
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{LIBRARY}.{os.getpid()}"
        done = subprocess.run([cc, *CFLAGS, "-o", str(partial), str(source)],
                              capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            partial.unlink(missing_ok=True)
            reason = (done.stderr or done.stdout).strip()[-1500:]
            raise PluginError(f"the QEMU plugin {source.name} does not build with {cc}: "
                              f"{reason}")
        partial.rename(built)
    log.info("built the QEMU plugin %s", built)
    return built


def markers(elf: Path) -> dict[str, int]:
    """The firmware's marker functions' addresses (``arm-none-eabi-nm``); those it lacks are
    left out."""
    try:
        out = subprocess.run([f"{TOOL_PREFIX}nm", str(elf)], capture_output=True, text=True,
                             timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise PluginError(f"cannot read the firmware's symbols: {exc}") from None
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] in MARKERS:
            found[parts[2]] = int(parts[0], 16) & ~1
    return found


def plugin_option(elf: Path, machine: Machine, out: Path, memory: bool = True,
                  library: Path | None = None) -> str:
    """The value of ``qemu-system-arm -plugin`` counting ``elf`` on ``machine`` into ``out``
    (the plugin built first if need be)."""
    library = library or plugin_library()
    args = {"out": str(out),
            "flash": f"{machine.code.origin:#x}:{machine.code.size:#x}",
            "sram": f"{machine.ram.origin:#x}:{machine.ram.size:#x}",
            "mem": "on" if memory else "off"}
    for name, address in markers(elf).items():
        args[name.removeprefix("eb_")] = f"{address:#x}"
    return ",".join([str(library).replace(",", ",,"),
                     *(f"{k}={v.replace(',', ',,')}" for k, v in args.items())])


def read_counts(out: Path) -> dict[str, Any]:
    """The plugin's file as ``{"total": {counter: n}, "invokes": n, "invoke": {counter: sum},
    "ops": [{"runs": n, "counts": {counter: sum}}], "memory": bool}``; a
    :class:`PluginError` when it is missing or malformed."""
    try:
        data = json.loads(out.read_text())
        names = data["counters"]
        return {"total": dict(zip(names, data["total"], strict=True)),
                "invokes": int(data["invokes"]),
                "invoke": dict(zip(names, data["invoke"], strict=True)),
                "ops": [{"runs": int(op["runs"]),
                         "counts": dict(zip(names, op["counts"], strict=True))}
                        for op in data["ops"]],
                "memory": bool(data["memory"])}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PluginError(f"the QEMU plugin wrote no readable counts ({out.name}: {exc})") \
            from None


def _split(counts: dict[str, float], runs: float, memory: bool) -> dict[str, Any]:
    per = {name: counts[name] / runs for name in counts}
    out: dict[str, Any] = {"classes": {c: per[c] for c in CLASSES},
                           "instructions": sum(per[c] for c in CLASSES),
                           "branch_taken": per["branch_taken"]}
    if memory:
        out["memory"] = {m: per[m] for m in MEMORY}
    return out


def per_inference(counts: dict[str, Any], instructions: float | None = None) -> dict[str, Any]:
    """``details["instruction_classes"]``: the mean per marked invoke of each class, taken
    branches and memory accesses by region, with a check of the classes' sum against the
    inference's ``instructions`` (from the firmware's clock) when given."""
    runs = counts["invokes"]
    if runs < 1:
        raise PluginError("the QEMU plugin saw no marked inference (a firmware without the "
                          "eb_invoke_begin/eb_invoke_end markers?)")
    out = {"method": "emulated", "source": SOURCE_NAME, "inferences": runs,
           **_split(counts["invoke"], runs, counts["memory"])}
    if instructions:
        out["check"] = {"timed_windows": instructions,
                        "difference": (out["instructions"] - instructions) / instructions}
    return out


def per_operator(counts: dict[str, Any]) -> list[dict[str, Any]]:
    """The mean per run of each marked operator (in execution order)."""
    return [_split(op["counts"], op["runs"], counts["memory"]) for op in counts["ops"]
            if op["runs"] > 0]
