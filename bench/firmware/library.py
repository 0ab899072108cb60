"""The TFLite Micro library for one core, with CMSIS-NN kernels, cached by content key.

The source list and flags are TFLM's own: its Makefile (``TARGET=cortex_m_generic
OPTIMIZED_KERNEL_DIR=cmsis_nn``) is asked for them, and each source is compiled exactly as its
``microlite`` rule would. Objects are kept one per source under a folder whose key is the
sources' pin, the core and the compiler, so the library is built once per core, and only as far
as it is needed: the framework and CMSIS-NN always, TFLM's kernels for the ops a firmware
registers (the rest when a link asks for more, or with :func:`Library.build_all`). The archive
``libtensorflow-microlite.a`` holds the objects built so far.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from bench.artifacts.cache import key, write_atomic
from bench.firmware import FirmwareError, cache_root
from bench.firmware.lock import locked
from bench.firmware.sources import sources_dir, sources_key

log = logging.getLogger(__name__)

TOOL_PREFIX = "arm-none-eabi-"
MAKEFILE = "tensorflow/lite/micro/tools/make/Makefile"
ARCHIVE = "libtensorflow-microlite.a"
#: Kernel helpers every op kernel may use.
KERNEL_HELPERS = ("kernels/kernel_util.cc", "kernels/micro_tensor_utils.cc")
_VARS = ("CXXFLAGS", "CCFLAGS", "INCLUDES", "CORE_OPTIMIZATION_LEVEL",
         "KERNEL_OPTIMIZATION_LEVEL", "THIRD_PARTY_KERNEL_OPTIMIZATION_LEVEL", "MICROLITE_LIBS",
         "LDFLAGS", "MICROLITE_CC_SRCS", "MICROLITE_CC_KERNEL_SRCS", "THIRD_PARTY_CC_SRCS",
         "THIRD_PARTY_KERNEL_CC_SRCS")
_PRINT_MK = "print-%:\n\t@echo '$*=$($*)'\n"
_REGISTER = re.compile(r"^\s*(?:const\s+)?TFLMRegistration\s*[*&]?\s*(Register_\w+)\(\)\s*\{",
                       re.MULTILINE)


def run(cmd: list[str], cwd: Path | None = None, timeout: float = 600) -> str:
    """Run a build tool; :class:`FirmwareError` with its output when it fails."""
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except FileNotFoundError as exc:
        raise FirmwareError(f"{cmd[0]} not found: install gcc-arm-none-eabi, "
                            "libnewlib-arm-none-eabi and libstdc++-arm-none-eabi-newlib "
                            "(`make toolchain`)") from exc
    except subprocess.TimeoutExpired as exc:
        raise FirmwareError(f"{Path(cmd[0]).name} timed out after {timeout:g} s") from exc
    if done.returncode:
        raise FirmwareError((done.stderr or done.stdout).strip() or
                            f"{cmd[0]} exited with status {done.returncode}")
    return done.stdout


def compiler_version() -> str:
    """``arm-none-eabi-gcc --version``'s first line (part of the library's key)."""
    return run([f"{TOOL_PREFIX}gcc", "--version"]).splitlines()[0].strip()


@dataclass(frozen=True)
class Flags:
    """TFLM's compile flags and source lists for one ``TARGET_ARCH``."""

    values: dict[str, str]

    def words(self, name: str) -> list[str]:
        return [w for w in shlex.split(self.values[name]) if w != "-MD"]

    def sources(self, name: str) -> list[str]:
        return self.values[name].split()


def tflm_flags(tflm: Path, arch: str, scratch: Path) -> Flags:
    """Ask TFLM's Makefile for its flags and sources (it needs numpy and Pillow to parse)."""
    scratch.mkdir(parents=True, exist_ok=True)
    printer = scratch / "print.mk"
    printer.write_text(_PRINT_MK)
    env_path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    cmd = ["make", "-s", "-f", MAKEFILE, "-f", str(printer), "TARGET=cortex_m_generic",
           f"TARGET_ARCH={arch}", "OPTIMIZED_KERNEL_DIR=cmsis_nn",
           f"TARGET_TOOLCHAIN_ROOT={Path(_which(f'{TOOL_PREFIX}gcc')).parent}/",
           *(f"print-{v}" for v in _VARS)]
    done = subprocess.run(cmd, cwd=tflm, capture_output=True, text=True, check=False,
                          env={**os.environ, "PATH": env_path}, timeout=300)
    values = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    missing = [v for v in _VARS if v not in values]
    if done.returncode or missing:
        raise FirmwareError(f"TFLite Micro's Makefile gave no {', '.join(missing) or 'flags'} "
                            f"for {arch}: {done.stderr.strip()[-800:]}")
    return Flags(values)


def _which(tool: str) -> str:
    import shutil

    found = shutil.which(tool)
    if found is None:
        raise FirmwareError(f"{tool} not found: install gcc-arm-none-eabi, "
                            "libnewlib-arm-none-eabi and libstdc++-arm-none-eabi-newlib "
                            "(`make toolchain`)")
    return found


@dataclass
class Library:
    """The library of one ``TARGET_ARCH`` in its cache folder."""

    arch: str
    root: Path  # <cache>/tflm/<key>
    tflm: Path  # the tflite-micro tree

    @cached_property
    def flags(self) -> Flags:
        cached = self.root / "flags.json"
        if cached.exists():
            return Flags(json.loads(cached.read_text()))
        flags = tflm_flags(self.tflm, self.arch, self.root)
        write_atomic(cached, json.dumps(flags.values, indent=1).encode())
        return flags

    @property
    def archive(self) -> Path:
        return self.root / ARCHIVE

    def objects_dir(self) -> Path:
        return self.root / "obj"

    def object_for(self, source: str) -> Path:
        return self.objects_dir() / f"{source}.o"

    # --- what to compile -----------------------------------------------------------------

    def groups(self) -> dict[str, tuple[list[str], str, str]]:
        """Source group → (sources, optimisation flag variable, kind) as TFLM's rules."""
        f = self.flags
        return {"core": (f.sources("MICROLITE_CC_SRCS") + f.sources("THIRD_PARTY_CC_SRCS"),
                         "CORE_OPTIMIZATION_LEVEL", "core"),
                "kernel": (f.sources("MICROLITE_CC_KERNEL_SRCS"), "KERNEL_OPTIMIZATION_LEVEL",
                           "kernel"),
                "third_party_kernel": (f.sources("THIRD_PARTY_KERNEL_CC_SRCS"),
                                       "THIRD_PARTY_KERNEL_OPTIMIZATION_LEVEL", "kernel")}

    @cached_property
    def registrations(self) -> dict[str, str]:
        """``Register_X`` function → the kernel source defining it."""
        found: dict[str, str] = {}
        for source in self.groups()["kernel"][0]:
            text = (self.tflm / source).read_text(errors="replace")
            for name in _REGISTER.findall(text):
                found.setdefault(name, source)
        return found

    def kernel_sources(self, registrations: Iterable[str]) -> list[str]:
        """The kernel sources an op resolver registering ``registrations`` needs: each one's
        file, its ``<op>_common.cc`` and the shared helpers."""
        kernels = self.groups()["kernel"][0]
        by_name = {Path(s).name: s for s in kernels}
        wanted = [s for s in kernels if s.endswith(KERNEL_HELPERS)]
        for name in registrations:
            source = self.registrations.get(name)
            if source is None:
                raise FirmwareError(f"no kernel source defines {name}() in TFLite Micro")
            wanted.append(source)
            common = by_name.get(Path(source).stem + "_common.cc")
            if common:
                wanted.append(common)
        return sorted(set(wanted))

    def all_sources(self) -> list[str]:
        return [s for sources, _, _ in self.groups().values() for s in sources]

    def base_sources(self) -> list[str]:
        """The framework and CMSIS-NN: what every firmware links."""
        groups = self.groups()
        return groups["core"][0] + groups["third_party_kernel"][0]

    # --- compiling -----------------------------------------------------------------------

    def command(self, source: str, output: Path) -> list[str]:
        f = self.flags
        level = next(level for sources, level, _ in self.groups().values() if source in sources)
        c = source.endswith(".c")
        tool = f"{TOOL_PREFIX}{'gcc' if c else 'g++'}"
        return [tool, *f.words("CCFLAGS" if c else "CXXFLAGS"), *f.words(level),
                *f.words("INCLUDES"), "-c", source, "-o", str(output)]

    def _compile(self, source: str) -> None:
        out = self.object_for(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            run(self.command(source, tmp), cwd=self.tflm)
            tmp.replace(out)
        finally:
            tmp.unlink(missing_ok=True)

    def ensure(self, sources: Iterable[str], jobs: int | None = None) -> float:
        """Compile the ``sources`` not built yet and refresh the archive; returns the seconds
        spent compiling (0 when everything was cached)."""
        sources = sorted(set(sources))
        if all(self.object_for(s).exists() for s in sources) and self.archive.exists():
            return 0.0
        with locked(self.root / "build.lock"):
            todo = [s for s in sources if not self.object_for(s).exists()]
            started = time.monotonic()
            if todo:
                log.info("TFLite Micro for %s: compiling %d sources", self.arch, len(todo))
                with ThreadPoolExecutor(jobs or os.cpu_count() or 1) as pool:
                    list(pool.map(self._compile, todo))
            self._archive()
            spent = time.monotonic() - started
            self._log_build(len(todo), spent)
        return spent

    def build_all(self, jobs: int | None = None) -> float:
        """Compile every source of the library (``microlite``); the seconds it took."""
        return self.ensure(self.all_sources(), jobs)

    def _archive(self) -> None:
        objects = sorted(str(p.relative_to(self.root)) for p in self.objects_dir().rglob("*.o"))
        tmp = self.root / f".{ARCHIVE}.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        run([f"{TOOL_PREFIX}ar", "rcs", tmp.name, *objects], cwd=self.root)
        tmp.replace(self.archive)

    def _log_build(self, compiled: int, seconds: float) -> None:
        path = self.root / "builds.json"
        history = json.loads(path.read_text()) if path.exists() else []
        history.append({"compiled": compiled, "seconds": round(seconds, 2),
                        "objects": len(list(self.objects_dir().rglob("*.o")))})
        write_atomic(path, json.dumps(history, indent=1).encode())

    def compile_seconds(self) -> float:
        """Total seconds spent compiling this library so far (every build logged)."""
        path = self.root / "builds.json"
        return sum(b["seconds"] for b in json.loads(path.read_text())) if path.exists() else 0.0


def library(arch: str) -> Library:
    """The (possibly still empty) library for TFLM ``TARGET_ARCH`` ``arch``."""
    sources = sources_dir()
    lib_key = key({"sources": sources_key(), "arch": arch, "compiler": compiler_version(),
                   "optimized_kernels": "cmsis_nn", "layout": 1})[:16]
    root = cache_root() / "tflm" / f"{arch.replace('+', '_')}-{lib_key}"
    root.mkdir(parents=True, exist_ok=True)
    return Library(arch, root, sources / "tflite-micro")
