"""Build a model's firmware for a machine, size its arena on the target, read its sizes.

The build is a project folder (:mod:`bench.firmware.project`) made with its own Makefile,
against the core's TFLite Micro library. The arena is sized on the target: a first build with
room to spare boots under QEMU and reports ``arena_used_bytes()``; the firmware is then relinked
with an arena a little above that figure (the smallest of a few that start). Builds are cached
by content key (model, machine, device memory, library, templates). Failures are
:class:`FirmwareError` with the compiler's or linker's reason: an op TFLite Micro lacks, flash
or RAM overflow.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import worker
from bench.artifacts.cache import key, write_atomic
from bench.artifacts.tflite_info import ModelInfo, inspect
from bench.board.reference_models import MODEL_IDS
from bench.firmware import FirmwareError, FirmwareUnsupported, cache_root, project
from bench.firmware.emulator import boot
from bench.firmware.library import TOOL_PREFIX, Library, library, run
from bench.firmware.lock import locked
from bench.firmware.machines import Machine, get_machine
from bench.firmware.project import (
    HEAP_SIZE,
    STACK_SIZE,
    TEMPLATES,
    Layout,
    arena_source,
    template,
    write_project,
)
from bench.firmware.resolver import kernels_for

log = logging.getLogger(__name__)

ELF = "firmware.elf"
RECORD = "build.json"
#: RAM kept free for everything but the arena and the model's input (twice: the protocol's
#: ``db`` buffer and the copy restored before each invoke) when sizing the first build:
#: stack, heap, TFLM's interpreter.
RAM_RESERVE = STACK_SIZE + HEAP_SIZE + 16 * 1024
GRANULE = 16
ARENA_TIMEOUT_S = 300.0  # x86-64 TFLite Micro's arena of the model (a first guess)
#: Bumped when what a build produces changes beyond the templates (part of the build key).
BUILD_FORMAT = 3  # 3: the API's db buffer sized to the model's input
_OVERFLOW = re.compile(r"region [`']?(\w+)'? overflowed by (\d+) bytes")
_MISSING = re.compile(r"missing: (\d+)")
FLASH_SECTIONS = (".vectors", ".text", ".rodata", ".ARM.extab", ".ARM.exidx", ".copy.table",
                  ".zero.table", ".data")
RAM_SECTIONS = (".data", ".bss", ".heap", ".stack")


class LinkOverflowError(FirmwareUnsupported):
    """The firmware does not fit the device: a memory region overflowed at link time."""

    def __init__(self, region: str, overflow: int, limit: int, detail: str) -> None:
        self.region, self.overflow, self.limit = region, overflow, limit
        what = {"FLASH": "flash", "RAM": "RAM"}.get(region, region)
        super().__init__(f"the firmware does not fit the device's {what}: region {region} "
                         f"overflowed by {overflow} bytes (the device has {limit} B); "
                         f"linker: {detail}")


@dataclass(frozen=True)
class Firmware:
    """A built firmware and its facts (``build.json`` in its folder)."""

    folder: Path
    machine: str
    model_id: str
    arena_size: int  # the arena linked in (a little above what TFLite Micro used)
    arena_used: int  # arena_used_bytes() on the target
    arena_x86: int | None  # what TFLite Micro's x86-64 build used for the same model
    flash_used: int  # text + rodata + data (+ vectors, unwind tables)
    ram_used: int  # data + bss (arena included) + heap + stack reservations
    sections: dict[str, int]
    library_seconds: float  # compiling the library's missing objects for this build
    firmware_seconds: float  # compiling and linking the firmware (both passes)
    ops: list[str]

    @property
    def elf(self) -> Path:
        return self.folder / ELF

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "folder": str(self.folder)}

    @classmethod
    def load(cls, folder: Path) -> Firmware:
        data = json.loads((folder / RECORD).read_text())
        return cls(**{**data, "folder": folder})


def templates_digest() -> str:
    """Digest of what generates a firmware project: the templates and the generator itself."""

    h = hashlib.sha256(Path(project.__file__).read_bytes())
    for name in (*TEMPLATES, "linker.ld.in", "Makefile.in"):
        h.update(template(name).encode())
    return h.hexdigest()[:16]


def elf_sections(elf: Path) -> dict[str, int]:
    """Section name → size in bytes (``arm-none-eabi-size -A``) of the allocated sections."""
    out = run([f"{TOOL_PREFIX}size", "-A", str(elf)])
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in FLASH_SECTIONS + RAM_SECTIONS:
            sizes[parts[0]] = int(parts[1])
    return sizes


def link_reason(output: str) -> str:
    """The lines of a build's output that say what went wrong."""
    keep = [ln.split(": ", 1)[-1] if "/ld: " in ln else ln for ln in output.splitlines()
            if re.search(r"error|overflowed|undefined reference|will not fit|Error \d", ln)
            and not re.match(r"\s*\d+ \|", ln)]  # not a warning's source excerpt
    return " | ".join(dict.fromkeys(keep))[:1500] or output.strip()[-1500:]


def _make(folder: Path, lib: Library, layout: Layout) -> None:
    """``make`` the project; compiles the rest of the library when the link lacks symbols."""
    for attempt in range(2):
        try:
            run(["make", "-C", str(folder), f"-j{os.cpu_count() or 1}", ELF], timeout=1800)
            return
        except FirmwareError as exc:
            text = str(exc)
            overflow = _OVERFLOW.search(text)
            if overflow:
                region = overflow.group(1)
                limit = layout.flash_bytes if region == "FLASH" else layout.ram_bytes
                raise LinkOverflowError(region, int(overflow.group(2)), limit,
                                        link_reason(text)) from None
            if "undefined reference" in text and attempt == 0:
                log.info("the link needs more of TFLite Micro: building the whole library")
                lib.build_all()
                continue
            raise FirmwareError(f"firmware build failed: {link_reason(text)}") from None


def _first_arena(tflite: bytes, layout: Layout, input_bytes: int) -> tuple[int, int, int | None]:
    """A first arena with room to spare (twice x86-64 TFLM's figure plus 8 KiB), the most the
    device's RAM leaves for it, and that x86-64 figure (None when it could not be measured)."""
    room = max(layout.ram_bytes - RAM_RESERVE - 2 * input_bytes, 4096)  # db + input
    try:  # native TFLite Micro, which can abort on a model: in a worker
        with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
            f.write(tflite)
            f.flush()
            x86 = int(worker.call("bench.runners.tflm:measure_arena_file", {"path": f.name},
                                  ARENA_TIMEOUT_S))
    except worker.WorkerError as exc:  # the target will say what it needs
        log.info("no x86-64 arena figure (%s): the first arena is the RAM left", exc)
        return room, room, None
    return min(2 * x86 + 8192, room), room, x86


def _make_first(folder: Path, lib: Library, layout: Layout, arena: int) -> int:
    """``make`` the first build; when its arena overflows the RAM, shrink it to fit (the
    target then says whether it is enough). Returns the arena linked."""
    for _ in range(3):
        try:
            _make(folder, lib, layout)
            return arena
        except LinkOverflowError as exc:
            smaller = (arena - exc.overflow - 1024) // GRANULE * GRANULE
            if exc.region != "RAM" or smaller < 1024:
                raise
            log.info("a %d-byte arena overflows the RAM by %d B: trying %d B", arena,
                     exc.overflow, smaller)
            arena = smaller
            (folder / "arena.cc").write_text(arena_source(arena))
    _make(folder, lib, layout)
    return arena


def _arena_on_target(elf: Path, machine: Machine, model_id: str) -> tuple[int | None, str]:
    """Boot ``elf`` and ask ``arena%``: (bytes used, "") or (None, TFLite Micro's error)."""
    from bench.board import protocol as p
    from bench.board.link import BoardError, connect

    with boot(elf, machine) as emulator:
        try:
            with connect({"port": emulator.port, "timeout_s": 30.0, "model": model_id}) as link:
                lines = link.command("arena")
        except BoardError as exc:
            reason = emulator.exit_reason()
            if reason:
                raise FirmwareError(f"{reason} while sizing the arena: {exc}") from None
            return None, str(exc)
    for line in lines:
        if line.startswith("m-arena-used-"):
            return int(line.rsplit("-", 1)[1]), ""
    raise FirmwareError(f"no m-arena-used line in the reply to `arena%`: {lines} "
                        f"(protocol: {p.READY})")


def _size_arena(folder: Path, lib: Library, layout: Layout, model_id: str, arena: int,
                room: int) -> tuple[int, int]:
    """Grow the arena until TFLite Micro allocates; returns (arena linked, arena used)."""
    for _ in range(6):
        used, error = _arena_on_target(folder / ELF, layout.machine, model_id)
        if used is not None:
            return arena, used
        if "AllocateTensors" not in error:
            raise FirmwareError(f"the firmware does not start on {layout.machine.name}: {error}")
        missing = _MISSING.search(error)
        grown = arena + int(missing.group(1)) + 1024 if missing else arena * 2
        if arena >= room:
            raise FirmwareUnsupported(f"the tensor arena does not fit the device's RAM: "
                                      f"TFLite Micro needs more than {arena} B ({error})")
        arena = min(grown, room)
        (folder / "arena.cc").write_text(arena_source(arena))
        _make(folder, lib, layout)
    raise FirmwareError(f"TFLite Micro still cannot allocate with a {arena}-byte arena")


def _shrink_arena(folder: Path, lib: Library, layout: Layout, model_id: str, arena: int,
                  used: int) -> int:
    """The smallest of ``used`` + 256 B, + 512 B, + 1 KiB, … (rounded to 16 B) with which the
    firmware starts: TFLite Micro needs a little more than ``arena_used_bytes()`` while it
    plans (temporary allocations), and a smaller arena leaves more RAM to the rest."""
    slack = 256
    while True:
        candidate = -(-used // GRANULE) * GRANULE + slack
        if candidate >= arena:
            break
        (folder / "arena.cc").write_text(arena_source(candidate))
        _make(folder, lib, layout)
        if _arena_on_target(folder / ELF, layout.machine, model_id)[0] is not None:
            return candidate
        slack *= 2
    (folder / "arena.cc").write_text(arena_source(arena))
    _make(folder, lib, layout)
    return arena


def _check_model(info: ModelInfo, source: str) -> int:
    """The input size in bytes; the protocol loads one input."""
    if len(info.inputs) != 1 or len(info.outputs) < 1:
        raise FirmwareError(f"{source}: the MLPerf Tiny protocol loads one input and reads one "
                            f"output; the model has {len(info.inputs)} inputs")
    t = info.inputs[0]
    width = {"int8": 1, "uint8": 1, "int16": 2, "float32": 4, "int32": 4}.get(t.dtype)
    if width is None:
        raise FirmwareError(f"{source}: input dtype {t.dtype} is not supported by the firmware")
    size = width
    for dim in t.shape:
        size *= dim
    return size


def build(tflite: bytes, layout: Layout, source: str = "model") -> Firmware:
    """The firmware of ``tflite`` for ``layout`` (built, arena sized, cached)."""
    info = inspect(tflite, source)
    input_bytes = _check_model(info, source)
    machine = layout.machine
    lib = library(machine.tflm_arch)
    sha = hashlib.sha256(tflite).hexdigest()
    model_id = MODEL_IDS.get(sha, f"edgebench-{sha[:12]}")  # m-model: kws01 … for the references
    folder = cache_root() / "builds" / key({
        "model": sha, "machine": machine.name, "flash": layout.flash_bytes,
        "ram": layout.ram_bytes, "library": lib.root.name, "templates": templates_digest(),
        "stack": STACK_SIZE, "heap": HEAP_SIZE, "format": BUILD_FORMAT})[:20]
    if (folder / RECORD).exists():
        return Firmware.load(folder)
    with locked(folder.with_name(folder.name + ".lock")):
        if (folder / RECORD).exists():
            return Firmware.load(folder)
        kernels = kernels_for(info.ops, lib.tflm)
        lib_seconds = lib.ensure(lib.base_sources() +
                                 lib.kernel_sources(k.registration for k in kernels))
        arena, room, x86 = _first_arena(tflite, layout, input_bytes)
        work = folder.with_name(f".{folder.name}.{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        write_project(work, tflite, lib, layout, kernels, input_bytes, model_id, arena, source)
        started = time.monotonic()
        try:
            linked = _make_first(work, lib, layout, arena)
            if linked < arena:  # the RAM holds no more than that
                arena = room = linked
            fw_seconds = time.monotonic() - started
            arena, used = _size_arena(work, lib, layout, model_id, arena, room)
            started = time.monotonic()
            arena = _shrink_arena(work, lib, layout, model_id, arena, used)
            fw_seconds += time.monotonic() - started
            sections = elf_sections(work / ELF)
            flash = sum(sections.get(s, 0) for s in FLASH_SECTIONS)
            ram = sum(sections.get(s, 0) for s in RAM_SECTIONS)
            firmware = Firmware(folder, machine.name, model_id, arena, used, x86, flash, ram,
                                sections, round(lib_seconds, 2), round(fw_seconds, 2),
                                list(info.ops))
            write_atomic(work / RECORD, json.dumps(firmware.to_json(), indent=1).encode())
            shutil.rmtree(folder, ignore_errors=True)
            work.rename(folder)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    log.info("firmware for %s on %s: %d B flash, %d B RAM, arena %d B (x86-64: %s)", source,
             machine.name, flash, ram, arena, x86)
    return Firmware.load(folder)


def build_for_device(tflite: bytes, machine: str, flash_kb: float | None,
                     ram_kb: float | None, source: str = "model") -> Firmware:
    """:func:`build` for a device file's machine and memory."""
    return build(tflite, Layout.for_device(get_machine(machine), flash_kb, ram_kb), source)
