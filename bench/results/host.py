"""What about this machine changes timings, read where readable (Linux ``/proc`` and ``/sys``):
CPU model, cores, frequency governor and frequencies, load, pinning, threading variables."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

#: Environment variables that change how fast native kernels run.
TIMING_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "MKL_NUM_THREADS",
              "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "TF_ENABLE_ONEDNN_OPTS",
              "XNNPACK_FORCE_DISABLE", "PYTHONHASHSEED")
_CPUFREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cpuinfo() -> str:
    return _read(Path("/proc/cpuinfo")) or ""


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name (``/proc/cpuinfo``, or its text given), else what ``platform``
    knows."""
    for line in (_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def physical_cores(cpuinfo: str | None = None) -> int | None:
    """Distinct (package, core) pairs in ``/proc/cpuinfo`` (or its text given); None where it
    does not say."""
    cores, package = set(), None
    for line in (_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "physical id":
            package = value.strip()
        elif key.strip() == "core id":
            cores.add((package, value.strip()))
    return len(cores) or None


def _khz_to_mhz(text: str | None) -> float | None:
    return None if text is None or not text.isdigit() else int(text) / 1000


def state() -> dict[str, Any]:
    """The machine's timing-relevant state now (a JSON-able mapping; unreadable facts are
    None)."""
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    logical = os.cpu_count()
    cpuinfo = _cpuinfo()
    return {
        "node": platform.node(),
        "cpu_model": cpu_model(cpuinfo),
        "logical_cores": logical,
        "physical_cores": physical_cores(cpuinfo),
        "governor": _read(_CPUFREQ / "scaling_governor"),
        "cpu_mhz": _khz_to_mhz(_read(_CPUFREQ / "scaling_cur_freq")),
        "cpu_max_mhz": _khz_to_mhz(_read(_CPUFREQ / "cpuinfo_max_freq")),
        "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "pinned": None if affinity is None or logical is None else len(affinity) < logical,
        "affinity": affinity,
        "env": {k: os.environ[k] for k in TIMING_ENV if k in os.environ},
    }


def identity(facts: dict[str, Any]) -> dict[str, Any]:
    """What must match for two sets of timings to be comparable: node, CPU model, cores."""
    return {k: facts.get(k) for k in ("node", "cpu_model", "logical_cores")}
