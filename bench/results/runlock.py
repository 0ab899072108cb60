"""One writer per run folder: an ``flock`` on ``<run>/run.lock`` while a process appends to it.

A run started or resumed takes the lock **exclusively**; the processes of one pytest session
(pytest-xdist workers) share a run on purpose and take it **shared**, so they write side by side
while any other writer is refused. A second writer gets :class:`RunLocked` naming the holder
(pid, host, since when). The kernel releases the lock when its process ends, even on SIGKILL,
so a killed run never leaves its folder locked.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from bench.worker import pid_alive

LOCK = "run.lock"
Mode = Literal["exclusive", "shared"]

#: How long a refused writer waits for the holder's note (written just after it takes the lock).
NOTE_WAIT_S = 2.0


class RunLocked(LookupError):
    """A run folder another process is writing. (A LookupError: the run is not available for
    writing; the CLI prints it as a plain error.)"""

    def __init__(self, run_path: Path, holders: list[dict[str, object]]) -> None:
        self.run_path, self.holders = run_path, holders
        who = "; ".join(_describe(h) for h in holders) or "a process that left no name"
        super().__init__(f"run {run_path} is being written by another edgebench process "
                         f"({who}); wait for it to finish (or stop it), then resume")


@dataclass(frozen=True)
class _Held:
    fd: int
    mode: Mode
    pid: int


#: Locks this process holds, by lock file.
_held: dict[Path, _Held] = {}


def _describe(holder: dict[str, object]) -> str:
    return (f"pid {holder.get('pid')} on {holder.get('host')}, {holder.get('mode')} since "
            f"{holder.get('since')}")


def _alive_here(holder: dict[str, object]) -> bool:
    """False for a holder on this host whose process is gone (a stale line)."""
    pid = holder.get("pid")
    if holder.get("host") != platform.node() or not isinstance(pid, int):
        return True
    return pid_alive(pid)


def holders(run_path: Path) -> list[dict[str, object]]:
    """The processes that noted themselves in the run's lock file (live ones on this host)."""
    try:
        lines = (run_path / LOCK).read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        try:
            holder = json.loads(line)
        except ValueError:
            continue
        if isinstance(holder, dict) and _alive_here(holder):
            found.append(holder)
    return found


def acquire(run_path: Path, mode: Mode = "exclusive") -> None:
    """Take the run's lock for this process (a no-op when it holds it already, in either
    mode); raise :class:`RunLocked` at once when another process holds it incompatibly."""
    path = Path(run_path).resolve() / LOCK
    held = _held.get(path)
    if held is not None and held.pid == os.getpid():
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if mode == "exclusive" else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        found, deadline = holders(Path(run_path)), time.monotonic() + NOTE_WAIT_S
        while not found and time.monotonic() < deadline:  # the holder is writing its note
            time.sleep(0.05)
            found = holders(Path(run_path))
        raise RunLocked(Path(run_path), found) from None
    if mode == "exclusive":
        os.ftruncate(fd, 0)  # earlier holders are gone
    note = {"pid": os.getpid(), "host": platform.node(), "mode": mode,
            "since": datetime.now(UTC).isoformat(timespec="seconds")}
    os.write(fd, (json.dumps(note) + "\n").encode())
    _held[path] = _Held(fd, mode, os.getpid())


def release(run_path: Path) -> None:
    """Give the run's lock back (closing the file releases the ``flock``)."""
    held = _held.pop(Path(run_path).resolve() / LOCK, None)
    if held is not None and held.pid == os.getpid():
        os.close(held.fd)


def held_mode(run_path: Path) -> Mode | None:
    """How this process holds the run's lock, or None."""
    held = _held.get(Path(run_path).resolve() / LOCK)
    return held.mode if held is not None and held.pid == os.getpid() else None
