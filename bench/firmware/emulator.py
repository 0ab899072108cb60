"""Boot a firmware under ``qemu-system-arm`` with its UART on a pseudo-terminal.

QEMU runs with ``-icount shift=0`` (one instruction per nanosecond of virtual time, so the
firmware's clock counts instructions), in its own process group, killed with the worker that
started it (``PR_SET_PDEATHSIG``) and always reaped when the board is closed. With a TCG
plugin (``-plugin``, :mod:`bench.firmware.classes`), a QEMU that does not start is started again
without it, and :attr:`Emulator.plugin_error` says why.
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
#: What a plugin edgebench loads prints (``qemu_plugin_outs``, shown with ``-d plugin``) once
#: installed: QEMU opens the UART's pty before it loads plugins.
PLUGIN_READY = "edgebench-plugin-ready"
_PTY = re.compile(r"char device redirected to (\S+)")


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def command(elf: Path, machine: Machine, plugin: str | None = None) -> list[str]:
    """The QEMU command line for ``elf`` on ``machine`` (UART0 on a new pty), with the
    ``-plugin`` option ``plugin``."""
    return [QEMU, "-M", machine.name, "-display", "none", "-monitor", "none",
            "-serial", "pty", "-icount", "shift=0", "-kernel", str(elf),
            *(["-plugin", plugin, "-d", "plugin"] if plugin else [])]


@dataclass
class Emulator:
    """A running QEMU: its process and the pty its UART0 is on."""

    process: subprocess.Popen[bytes]
    port: str
    log_path: Path
    machine: Machine
    plugin: str | None = None  # the -plugin option QEMU runs with
    plugin_error: str | None = None  # why QEMU runs without the plugin it was asked for

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
            lines = [ln for ln in text.splitlines()
                     if not _PTY.search(ln) and PLUGIN_READY not in ln]
            if lines:
                return ": " + " | ".join(lines[-4:])
        return ""

    def stop(self) -> None:
        """Kill QEMU's process group and reap it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def _start(elf: Path, machine: Machine, log_path: Path, plugin: str | None) -> Emulator:
    """QEMU started, once its UART's pty is known (a :class:`FirmwareError` if it is not)."""
    with log_path.open("wb") as out:
        process = subprocess.Popen(command(elf, machine, plugin), stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=_die_with_parent)
    emulator = Emulator(process, "", log_path, machine, plugin)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not emulator.port:
            text = log_path.read_text(errors="replace")
            found = _PTY.search(text)
            if found and (plugin is None or PLUGIN_READY in text):
                emulator.port = found.group(1)
            elif process.poll() is not None:
                raise FirmwareError(f"{emulator.exit_reason()} before opening its UART")
            elif time.monotonic() > deadline:
                raise FirmwareError(f"QEMU ({machine.name}) gave no pty within "
                                    f"{START_TIMEOUT_S:g} s{emulator.output_tail()}")
            else:
                time.sleep(0.02)
    except BaseException:
        emulator.stop()
        raise
    return emulator


@contextlib.contextmanager
def boot(elf: Path, machine: Machine, plugin: str | None = None) -> Iterator[Emulator]:
    """Start QEMU on ``elf`` (with the ``-plugin`` option ``plugin``: without it if QEMU does
    not start with it); yields once its UART's pty is known; always reaps it."""
    if shutil.which(QEMU) is None:
        raise FirmwareError(f"{QEMU} not found: install qemu-system-arm (`make toolchain`)")
    with tempfile.TemporaryDirectory(prefix="edgebench-qemu-") as tmp:
        log_path = Path(tmp) / "qemu.log"
        try:
            emulator = _start(elf, machine, log_path, plugin)
        except FirmwareError as exc:
            if plugin is None:
                raise
            log.warning("QEMU does not start with its plugin (%s): running without it", exc)
            emulator = _start(elf, machine, log_path, None)
            emulator.plugin_error = f"QEMU did not start with the plugin: {exc}"
        try:
            log.info("QEMU %s (pid %d): UART0 on %s", machine.name, emulator.process.pid,
                     emulator.port)
            yield emulator
        finally:
            emulator.stop()
