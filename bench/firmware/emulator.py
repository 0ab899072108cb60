"""Boot a firmware under ``qemu-system-arm`` with its UART on a pseudo-terminal.

QEMU runs with ``-icount shift=0`` (one instruction per nanosecond of virtual time, so the
firmware's clock counts instructions), in its own process group, killed with the worker that
started it (``PR_SET_PDEATHSIG``) and always reaped when the board is closed.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.firmware import FirmwareError
from bench.firmware.machines import Machine

log = logging.getLogger(__name__)

QEMU = "qemu-system-arm"
START_TIMEOUT_S = 20.0
_PTY = re.compile(r"char device redirected to (\S+)")


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def command(elf: Path, machine: Machine) -> list[str]:
    """The QEMU command line for ``elf`` on ``machine`` (UART0 on a new pty)."""
    return [QEMU, "-M", machine.name, "-display", "none", "-monitor", "none",
            "-serial", "pty", "-icount", "shift=0", "-kernel", str(elf)]


@dataclass
class Emulator:
    """A running QEMU: its process and the pty its UART0 is on."""

    process: subprocess.Popen[bytes]
    port: str
    log_path: Path
    machine: Machine

    def exit_reason(self, wait_s: float = 0.0) -> str | None:
        """Why QEMU is gone (exit status or signal, and its last output), or None if it is
        still running after ``wait_s`` (a link that just broke may precede QEMU's exit)."""
        try:
            code = self.process.wait(timeout=wait_s) if wait_s else self.process.poll()
        except subprocess.TimeoutExpired:
            code = None
        if code is None:
            return None
        how = (f"was killed by {signal.Signals(-code).name}" if code < 0
               else f"exited with status {code}")
        return f"QEMU ({self.machine.name}) {how}{self.output_tail()}"

    def output_tail(self) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").strip()
            lines = [ln for ln in text.splitlines() if not _PTY.search(ln)]
            if lines:
                return ": " + " | ".join(lines[-4:])
        return ""

    def stop(self) -> None:
        """Kill QEMU's process group and reap it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@contextlib.contextmanager
def boot(elf: Path, machine: Machine) -> Iterator[Emulator]:
    """Start QEMU on ``elf``; yields once its UART's pty is known; always reaps it."""
    if shutil.which(QEMU) is None:
        raise FirmwareError(f"{QEMU} not found: install qemu-system-arm (`make toolchain`)")
    with tempfile.TemporaryDirectory(prefix="edgebench-qemu-") as tmp:
        log_path = Path(tmp) / "qemu.log"
        with log_path.open("wb") as out:
            process = subprocess.Popen(command(elf, machine), stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True, preexec_fn=_die_with_parent)
        emulator = Emulator(process, "", log_path, machine)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not emulator.port:
                found = _PTY.search(log_path.read_text(errors="replace"))
                if found:
                    emulator.port = found.group(1)
                elif process.poll() is not None:
                    raise FirmwareError(f"{emulator.exit_reason()} before opening its UART")
                elif time.monotonic() > deadline:
                    raise FirmwareError(f"QEMU ({machine.name}) gave no pty within "
                                        f"{START_TIMEOUT_S:g} s{emulator.output_tail()}")
                else:
                    time.sleep(0.02)
            log.info("QEMU %s (pid %d): UART0 on %s", machine.name, process.pid, emulator.port)
            yield emulator
        finally:
            emulator.stop()
