"""A virtual LPM01A: the power monitor of edgebench's virtual energy bench, on a pseudo-terminal.

It answers the LPM01A's serial commands (:mod:`bench.monitors.lpm01a`) and, while acquiring,
streams the energy of each sample period computed from a :class:`PowerTimeline`, the current
the virtual board draws over wall time (active while it infers, idle between, a pulse at each
timestamp), with multiplicative noise; the board's timestamp edges appear as ``event N ris``
lines at the sample where they fell, and a ``TimeStamp`` line follows every second of samples.
``powershield`` names it :data:`~bench.monitors.lpm01a.VIRTUAL_ID`, so whoever reads it knows
its figures are a power model's, not a measurement. ``fault`` makes it misbehave, for tests.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import logging
import os
import random
import select
import threading
import time
import tty
from collections.abc import Callable

from bench.monitors.lpm01a import (
    MAX_ASCII_RATE,
    PROMPT,
    RATES,
    VIRTUAL_ID,
    VOLTAGE_RANGE_V,
    format_value,
)

log = logging.getLogger(__name__)

#: ``garbage``: answers in unreadable bytes; ``silence``: never answers (as if absent);
#: ``drop``: loses 2 % of the samples it streams; ``stop``: stops streaming 0.3 s after the
#: first timestamp edge of an acquisition.
FAULTS = ("garbage", "silence", "drop", "stop")
DROP_SHARE = 0.02
#: How far behind now the stream runs (the timeline is settled there).
LAG_S = 0.005


class PowerTimeline:
    """The DUT's supply current over wall time (``time.monotonic``): piecewise constant, set
    now or ahead of now, never behind what was streamed; and its timestamp edges."""

    def __init__(self, idle_a: float) -> None:
        self.lock = threading.Lock()
        self.times: list[float] = [0.0]
        self.currents: list[float] = [idle_a]
        self.edges: list[float] = []
        self.idle_a = idle_a

    def set(self, current_a: float, at: float | None = None) -> None:
        """The current from ``at`` (default now) on; later settings at or after it are
        replaced (the board decides its future as it goes)."""
        at = time.monotonic() if at is None else at
        with self.lock:
            i = bisect.bisect_left(self.times, at)
            del self.times[i:], self.currents[i:]
            self.times.append(at)
            self.currents.append(current_a)

    def busy(self, start: float, stop: float, current_a: float) -> None:
        """Draw ``current_a`` from ``start`` to ``stop``, then idle."""
        self.set(current_a, start)
        self.set(self.idle_a, stop)

    def edge(self, at: float | None = None) -> None:
        with self.lock:
            bisect.insort(self.edges, time.monotonic() if at is None else at)

    def charge(self, t0: float, t1: float) -> float:
        """∫ current dt over [t0, t1), in coulombs."""
        with self.lock:
            i = max(bisect.bisect_right(self.times, t0) - 1, 0)
            total, t = 0.0, t0
            while t < t1:
                end = self.times[i + 1] if i + 1 < len(self.times) else t1
                end = min(end, t1)
                total += self.currents[i] * (end - t)
                t, i = end, i + 1
            return total

    def take_edges(self, since: float, before: float) -> int:
        """How many edges fell in [since, before), each counted once: an edge the board
        records after the stream has passed its time (a thread held up past the monitor's
        lag) comes out in the next sample instead of being lost; older ones are dropped."""
        with self.lock:
            j = bisect.bisect_left(self.edges, before)
            taken = sum(1 for t in self.edges[:j] if t >= since)
            del self.edges[:j]
            return taken

    def forget(self, before: float) -> None:
        """Drop what ended before ``before`` (bounded memory over a long serve)."""
        with self.lock:
            i = max(bisect.bisect_right(self.times, before) - 1, 0)
            del self.times[:i], self.currents[:i]
            j = bisect.bisect_left(self.edges, before)
            del self.edges[:j]


class PtyPort:
    """The master side of a raw pseudo-terminal; the slave stays open (reads never fail
    between host sessions); writes give up on a host that stopped reading."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        os.set_blocking(self.master, False)
        self.address = os.ttyname(self.slave)
        self.lock = threading.Lock()

    def read(self, timeout: float) -> bytes:
        try:
            ready, _, _ = select.select([self.master], [], [], timeout)
        except (OSError, ValueError):  # closed
            return b""
        if not ready:
            return b""
        try:
            return os.read(self.master, 4096)
        except OSError:  # nothing after all, or the port closed
            return b""

    def write(self, data: bytes, timeout: float = 1.0) -> bool:
        """Write all of ``data``; False when the host did not take it within ``timeout``."""
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        with self.lock:
            while view:
                try:
                    view = view[os.write(self.master, view):]
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                        return False
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    select.select([], [self.master], [], min(left, 0.05))
        return True

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class VirtualLPM01A:
    """The instrument: a command interpreter and, while acquiring, a streaming thread."""

    def __init__(self, timeline: PowerTimeline, *, fault: str | None = None,
                 noise: float = 0.01, seed: int = 0) -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown monitor fault {fault!r} (known: {', '.join(FAULTS)})")
        self.timeline, self.fault, self.noise = timeline, fault, noise
        self.rng = random.Random(seed)
        self.port = PtyPort()
        self.voltage_v = 3.3
        self.rate_hz = 100
        self.output = "current"
        self.powered = False
        self.acquiring = threading.Event()
        self.streamer: threading.Thread | None = None

    @property
    def address(self) -> str:
        return self.port.address

    # --- commands ------------------------------------------------------------------------------

    def _say(self, *lines: str) -> None:
        if self.fault == "silence":
            return
        if self.fault == "garbage":  # what a wrong baud rate looks like
            self.port.write(b"".join(bytes(self.rng.randrange(0x80, 0x100) for _ in line)
                                     + b"\r\n" for line in lines))
            return
        self.port.write(b"".join(f"{line}\r\n".encode() for line in lines))

    def _ack(self, command: str, value: str = "") -> None:
        self._say(f"{PROMPT}ack {command}{' ' + value if value else ''}")

    def _error(self, command: str, detail: str) -> None:
        self._say(f"{PROMPT}error {command}", f"Error detail: {detail}")

    def handle(self, line: str) -> None:
        """Answer one command line."""
        words = line.split()
        if not words:
            return
        cmd, args = words[0], words[1:]
        line = line.strip()  # the PowerShield echoes the whole command in its answer
        simple = {"htc", "hrc", "lcd", "trigsrc", "trigdelay", "eventsrc", "acqtime", "acqmode",
                  "funcmode", "currthres", "pwrend", "targrst", "calib", "echo"}
        if cmd in simple:
            self._ack(line)
        elif cmd == "powershield":
            self._ack(line, f"PowerShield present ({VIRTUAL_ID})")
        elif cmd == "version":
            self._ack(line, "1.0.5")
        elif cmd == "status":
            self._ack(line, "ok")
        elif cmd == "temp":
            self._ack(line, "25.0 degc")
        elif cmd == "volt":
            self._volt(line, args)
        elif cmd == "freq":
            self._freq(line, args)
        elif cmd == "output":
            if args[:1] not in (["current"], ["energy"]):
                return self._error(line, "expected 'current' or 'energy'")
            self.output = args[0]
            self._ack(line)
        elif cmd == "format":
            if args[:1] != ["ascii_dec"]:
                return self._error(line, "the virtual monitor streams ascii_dec only")
            self._ack(line)
        elif cmd == "pwr":
            if args[:1] == ["get"]:
                return self._ack(line, "on" if self.powered else "off")
            if args[:1] not in (["on"], ["off"], ["auto"]):
                return self._error(line, "expected on, off, auto or get")
            self.powered = args[0] != "off"
            self._ack(line)
        elif cmd == "start":
            self._ack(line)
            self._start()
        elif cmd == "stop":
            self._stop()
            self._say("Acquisition completed")
        else:
            self._error(line, f"unknown command '{cmd}'")

    def _volt(self, line: str, args: list[str]) -> None:
        if args[:1] == ["get"]:
            return self._ack(line, f"{self.voltage_v:.3f}")
        try:
            text = args[0]
            value = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
        except (IndexError, ValueError):
            return self._error(line, "expected a voltage such as 1800m")
        if not VOLTAGE_RANGE_V[0] <= value <= VOLTAGE_RANGE_V[1]:
            return self._error(line, "value out of range [1800m; 3300m]")
        self.voltage_v = value
        self._ack(line)

    def _freq(self, line: str, args: list[str]) -> None:
        text = args[0] if args else ""
        try:
            value = int(text[:-1]) * 1000 if text.endswith("k") else int(text)
        except ValueError:
            value = -1
        if value not in RATES:
            return self._error(line, "value not in the list of sampling frequencies")
        if value > MAX_ASCII_RATE:
            return self._error(line, "ascii_dec streaming is limited to 5k without a "
                                       "time limit")
        self.rate_hz = value
        self._ack(line)

    # --- streaming -----------------------------------------------------------------------------

    def _start(self) -> None:
        self._stop()
        self.acquiring.set()
        self.streamer = threading.Thread(target=self._stream, args=(time.monotonic(),),
                                         name="virtual lpm01a stream", daemon=True)
        self.streamer.start()

    def _stop(self) -> None:
        self.acquiring.clear()
        if self.streamer is not None:
            self.streamer.join(2.0)
            self.streamer = None

    def _sample(self, t0: float, t1: float) -> float:
        """One period's energy (J) or mean current (A), with the monitor's noise."""
        charge = self.timeline.charge(t0, t1) if self.powered else 0.0
        value = charge * self.voltage_v if self.output == "energy" else charge / (t1 - t0)
        return max(value * (1 + self.noise * self.rng.gauss(0, 1)), 0.0)

    def _stream(self, started: float) -> None:
        period = 1.0 / self.rate_hz
        sent = events = 0
        first_edge: float | None = None
        while self.acquiring.is_set():
            horizon = time.monotonic() - LAG_S
            lines: list[str] = []
            while started + (sent + 1) * period <= horizon:
                t0 = started + sent * period
                t1 = t0 + period
                value = self._sample(t0, t1)
                sent += 1
                if self.fault != "drop" or self.rng.random() >= DROP_SHARE:
                    lines.append(format_value(value))
                for _ in range(self.timeline.take_edges(started, t1)):
                    lines.append(f"event {events} ris")
                    events += 1
                    first_edge = t1 if first_edge is None else first_edge
                if sent % self.rate_hz == 0:
                    secs = sent // self.rate_hz
                    lines.append(f"TimeStamp: {secs % 1000:03d}s 000ms, buff 00%")
            if self.fault == "stop" and first_edge is not None and horizon > first_edge + 0.3:
                lines = []  # the stream stops mid-window; commands are still answered
            sent_ok = (not lines or self.fault == "silence"
                       or self.port.write("".join(f"{ln}\r\n" for ln in lines).encode()))
            if not sent_ok:
                log.info("virtual monitor: the host stopped reading; acquisition stopped")
                self.acquiring.clear()
                break
            self.timeline.forget(started + sent * period - 1.0)
            time.sleep(0.01)

    # --- serving -------------------------------------------------------------------------------

    def serve(self, stop: Callable[[], bool] = lambda: False) -> None:
        """Answer command lines until ``stop()``."""
        pending = b""
        while not stop():
            data = self.port.read(0.2)
            if not data:
                continue
            *lines, pending = (pending + data).split(b"\n")
            pending = pending[-256:]
            for raw in lines:
                text = raw.replace(b"\r", b"").decode("ascii", errors="replace").strip()
                log.debug("monitor command %r", text)
                self.handle(text)

    def close(self) -> None:
        self._stop()
        self.port.close()
