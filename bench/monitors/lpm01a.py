"""STMicroelectronics X-NUCLEO-LPM01A (PowerShield) over its serial command protocol.

Commands are text lines (``\\r\\n``); each is answered ``ack <command> [value]`` or ``error …``
followed by ``Error detail: …``; replies may carry the ``PowerShield > `` prompt. Set up as
MLPerf Tiny's runner does: ``htc`` (host takes control), ``pwr off``, ``acqtime inf``,
``trigdelay 0``, ``trigsrc sw``, ``eventsrc d7 fal`` (the DUT's timestamp pin on D7),
``output energy`` (each sample is the energy of one period), ``format ascii_dec``,
``freq <rate>``, ``volt <mV>m``, ``pwr on nostatus``, ``start``. While acquiring it streams a
line per sample, ``dddd±ee`` (``6409-07`` = 6409 × 10⁻⁷), a ``TimeStamp: 001s 000ms, buff
00%`` line each second (a count of samples that were sent), and ``event N ris`` at each edge on
D7. ``stop`` ends the stream with ``Acquisition completed``; ``hrc`` releases control.

Options (device file ``energy.monitor``): ``port`` or ``usb`` ("0483:5740"), ``baud``
(3686400), ``voltage_v`` (3.3; 1.8–3.3), ``rate_hz`` (1000; ASCII streaming allows up to 5000
without a time limit), ``max_dropped`` (0.001: the share of a window's samples that may be lost
before the window fails), ``timeout_s`` (5, per command).
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import re
import threading
import time
from collections import deque
from typing import Any

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from bench.errors import Strict
from bench.monitors.base import Monitor, MonitorError, MonitorKind, Trace

log = logging.getLogger(__name__)

PROMPT = "PowerShield > "
#: Sampling rates the ``freq`` command takes.
RATES = (100_000, 50_000, 20_000, 10_000, 5_000, 2_000, 1_000, 500, 200, 100, 50, 20, 10, 5,
         2, 1)
#: The fastest ASCII rate an unlimited acquisition allows (the firmware's own table).
MAX_ASCII_RATE = 5_000
VOLTAGE_RANGE_V = (1.8, 3.3)
#: What a virtual monitor (edgebench's bench) says to ``powershield``.
VIRTUAL_ID = "edgebench virtual"

_VALUE = re.compile(r"(\d{4})([+-])(\d{2})")
_TIMESTAMP = re.compile(r"^TimeStamp:[ ><](\d{3})s (\d{3})ms, buff (\d{2})%$")
_EVENT = re.compile(r"^event (\d+) (ris|fal)$")
#: How far past the end of a window the stream must reach before it is collected.
CATCH_UP_S = 0.05
#: Lines of the stream kept per window at most (bounded memory: 1 h at 5 kHz).
MAX_WINDOW_SAMPLES = 18_000_000


def format_value(value: float) -> str:
    """``dddd±ee``: four significant digits and a power of ten (``6.409e-4`` → ``6409-07``)."""
    if not value > 0:
        return "0000+00"
    exp = math.floor(math.log10(value)) - 3
    mantissa = round(value / 10.0 ** exp)
    if mantissa >= 10_000:
        mantissa, exp = mantissa // 10, exp + 1
    return f"{mantissa:04d}{'-' if exp < 0 else '+'}{abs(exp):02d}"


def parse_value(text: str) -> float:
    """The number of a ``dddd±ee`` sample; ValueError otherwise."""
    found = _VALUE.fullmatch(text)
    if found is None:
        raise ValueError(f"not an LPM01A sample: {text[:40]!r}")
    digits, sign, exp = found.groups()
    return int(digits) * 10.0 ** (int(exp) if sign == "+" else -int(exp))


def parse_samples(line: str) -> list[float] | None:
    """The samples of a stream line (NaN for a cut one at either end), or None when the line
    holds none."""
    matches = list(_VALUE.finditer(line))
    if not matches:
        return None
    values = [parse_value(m.group()) for m in matches]
    if matches[0].start() > 0:
        values.insert(0, math.nan)
    if matches[-1].end() < len(line):
        values.append(math.nan)
    return values


def parse_timestamp(line: str) -> float | None:
    """Seconds since the acquisition started of a ``TimeStamp:`` line, else None."""
    found = _TIMESTAMP.match(line)
    return int(found.group(1)) + int(found.group(2)) / 1000 if found else None


def parse_event(line: str) -> int | None:
    """The number of an ``event N ris|fal`` line, else None."""
    found = _EVENT.match(line)
    return int(found.group(1)) if found else None


def volt_argument(voltage_v: float) -> str:
    return f"{round(voltage_v * 1000)}m"


def freq_argument(rate_hz: int) -> str:
    return f"{rate_hz // 1000}k" if rate_hz >= 1000 and rate_hz % 1000 == 0 else str(rate_hz)


def find_port(port: str | None, usb: str | None, what: str) -> str:
    """A port from ``port`` (path or pyserial URL) or ``usb: "VID:PID"`` among attached ports."""
    if port:
        return port
    if not usb:
        raise MonitorError("?", f"the {what} needs `port` or `usb: \"VID:PID\"`")
    from serial.tools import list_ports

    vid, pid = (int(x, 16) for x in usb.split(":"))
    ports = list(list_ports.comports())
    for info in ports:
        if info.vid == vid and info.pid == pid:
            return str(info.device)
    seen = ", ".join(f"{i.device} ({i.vid or 0:04x}:{i.pid or 0:04x})" for i in ports) or "none"
    raise MonitorError(f"usb {usb}", f"no serial port of the {what}",
                       expected=f"a port with USB id {usb}", received=f"attached: {seen}")


def _vid_pid(usb: str | None) -> str | None:
    if usb is not None and not re.fullmatch(r"[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}", str(usb)):
        raise ValueError(f'expected "VID:PID" in hex, e.g. "0483:5740" (got {usb!r})')
    return usb


class LPM01AOptions(Strict):
    """An LPM01A's options (device file ``energy.monitor``), with their defaults."""

    usb: str | None = Field(None, description='USB "VID:PID" of the monitor, in hex')
    port: str | None = Field(None, validate_default=True,
                             description="the monitor's serial port path or pyserial URL")
    baud: int = Field(3_686_400, gt=0)
    voltage_v: float = Field(3.3, ge=VOLTAGE_RANGE_V[0], le=VOLTAGE_RANGE_V[1],
                             description="supply voltage applied to the DUT, V")
    rate_hz: int = Field(1000, description="samples per second")
    max_dropped: float = Field(0.001, ge=0, lt=1, description="share of a window's samples "
                               "that may be lost")
    timeout_s: float = Field(5.0, gt=0)

    @field_validator("usb")
    @classmethod
    def _usb(cls, usb: str | None) -> str | None:
        return _vid_pid(usb)

    @field_validator("rate_hz")
    @classmethod
    def _rate(cls, rate: int) -> int:
        allowed = [r for r in RATES if r <= MAX_ASCII_RATE]
        if rate not in allowed:
            raise ValueError(f"expected one of {', '.join(map(str, allowed))} (the rates an "
                             f"unlimited ASCII acquisition allows; got {rate!r})")
        return rate

    @field_validator("port")
    @classmethod
    def _port_or_usb(cls, port: str | None, info: ValidationInfo) -> str | None:
        if "usb" in info.data and not port and not info.data["usb"]:
            raise ValueError('Field required: a monitor gives `port` (a path or a pyserial '
                             'URL) or `usb: "VID:PID"`')
        return port


class LPM01A(Monitor):
    """An open LPM01A: a reader thread sorts its lines into answers and the sample stream."""

    description = "STM32 LPM01A (X-NUCLEO-LPM01A PowerShield)"

    def __init__(self, opts: LPM01AOptions, *, virtual: bool | None = None) -> None:
        """``virtual``: True to require edgebench's virtual monitor, False to refuse it, None
        to take either (the figures' method follows what the monitor says it is)."""
        import serial

        self.opts, self.expect_virtual = opts, virtual
        self.port = find_port(opts.port, opts.usb, "LPM01A")
        kwargs: dict[str, Any] = {"baudrate": opts.baud, "timeout": 0.05,
                                  "write_timeout": opts.timeout_s}
        if "://" not in self.port:
            kwargs["exclusive"] = True
        try:
            self.serial = serial.serial_for_url(self.port, **kwargs)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise MonitorError(self.port, "cannot open the monitor's port",
                               expected="an LPM01A (PowerShield) on it",
                               received=str(exc)) from exc
        self.identity = ""
        self.lock = threading.Lock()
        self.messages: queue.Queue[str] = queue.Queue()
        self.last: deque[str] = deque(maxlen=6)
        self.pending = b""  # an unterminated line, for error messages
        self.streaming = False
        self.started_at = 0.0
        self.total = 0  # samples of the acquisition so far, dropped ones included
        self.last_sample_at = 0.0
        self.window: list[float] = []
        self.events: list[int] = []
        self.stream_errors: list[str] = []
        self.stop_reading = threading.Event()
        self.reader = threading.Thread(target=self._read_loop, name=f"lpm01a {self.port}",
                                       daemon=True)
        self.reader.start()

    # --- reading -------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        pending = b""
        while not self.stop_reading.is_set():
            try:
                chunk = self.serial.read(max(1, self.serial.in_waiting))
            except Exception as exc:  # the port went away: say so to whoever waits
                self.messages.put(f"\0read failed: {exc}")
                return
            if not chunk:
                continue
            *lines, pending = (pending + chunk).split(b"\n")
            if len(pending) > 4096:
                lines, pending = [*lines, pending], b""
            self.pending = pending[:60]
            for raw in lines:
                self._line(raw.replace(b"\r", b"").replace(b"\0", b"").decode("latin-1"))

    def _line(self, line: str) -> None:
        line = line.replace(PROMPT, "").strip()
        if not line:
            return
        self.last.append(line[:80])
        if not self.streaming:
            self.messages.put(line)
            return
        now = time.monotonic()
        with self.lock:
            values = parse_samples(line) if line[:1].isdigit() else None
            if values is not None:
                self._append(values)
                self.last_sample_at = now
            elif (ts := parse_timestamp(line)) is not None:
                expected = round(ts * self.opts.rate_hz)
                if expected > self.total:  # samples the monitor counted but we never got
                    self._append([math.nan] * min(expected - self.total, MAX_WINDOW_SAMPLES))
            elif parse_event(line) is not None:
                self.events.append(len(self.window))
            elif line.startswith(("error", "Error")) or not line.isprintable():
                self.stream_errors.append(line[:80])
            else:
                self.messages.put(line)

    def _append(self, values: list[float]) -> None:
        self.total += len(values)
        room = MAX_WINDOW_SAMPLES - len(self.window)
        self.window.extend(values[:room])

    # --- commands ------------------------------------------------------------------------------

    def command(self, text: str, timeout: float | None = None) -> str:
        """Send one command; the rest of its ``ack`` line. :class:`MonitorError` on an error
        answer, unreadable bytes or no answer in time."""
        while not self.messages.empty():
            self.messages.get_nowait()
        try:
            self.serial.write(f"{text}\r\n".encode("ascii"))
        except Exception as exc:
            raise MonitorError(self.port, f"cannot write `{text}`", received=str(exc)) from exc
        waited = self.opts.timeout_s if timeout is None else timeout
        deadline = time.monotonic() + waited
        word = text.split()[0]
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.messages.get(timeout=left)
            except queue.Empty:
                break
            if line.startswith("\0"):
                raise MonitorError(self.port, line[1:], expected=f"ack {word}")
            if not line.isascii() or not line.isprintable():
                raise MonitorError(self.port, f"unreadable answer to `{text}` (wrong baud rate? "
                                   f"expected {self.opts.baud})", expected=f"ack {word}",
                                   received=repr(line[:60]))
            if line.startswith("ack") and word in line:  # the PowerShield echoes the command
                return line.split(text if text in line else word, 1)[1].strip()
            if line.startswith("error"):
                detail = ""
                with contextlib.suppress(queue.Empty):
                    detail = self.messages.get(timeout=0.5)
                raise MonitorError(self.port, f"`{text}` refused", expected=f"ack {word}",
                                   received=f"{line} {detail}".strip())
        seen = " | ".join(self.last) or "nothing"
        if self.pending:
            seen += f"; unterminated: {self.pending!r}"
        raise MonitorError(self.port, f"no answer to `{text}` within {waited:.1f} s",
                           expected=f"ack {word}", received=seen)

    @property
    def virtual(self) -> bool:
        return VIRTUAL_ID in self.identity

    @property
    def method(self) -> str:  # type: ignore[override]
        return "emulated" if self.virtual else "board"

    def start(self) -> None:
        """Take control, configure as MLPerf Tiny does, power the DUT and start streaming."""
        self.command("htc")
        self.identity = self.command("powershield")
        if self.expect_virtual is True and not self.virtual:
            raise MonitorError(self.port, "this is not edgebench's virtual monitor",
                               expected=f"a `powershield` answer naming {VIRTUAL_ID!r}",
                               received=repr(self.identity))
        if self.expect_virtual is False and self.virtual:
            raise MonitorError(self.port, "this is edgebench's virtual monitor, not an LPM01A",
                               expected="a real LPM01A (use `kind: virtual` for the bench)",
                               received=repr(self.identity))
        for cmd in ("pwr off", "acqtime inf", "trigdelay 0", "trigsrc sw", "eventsrc d7 fal",
                    "output energy", "format ascii_dec", f"freq {freq_argument(self.opts.rate_hz)}",
                    f"volt {volt_argument(self.opts.voltage_v)}", "pwr on nostatus"):
            self.command(cmd)
        with self.lock:
            self.streaming = True
            self.window, self.events, self.total = [], [], 0
        sent = time.monotonic()  # the monitor's clock starts after this: the stream lags it
        self.command("start")
        self.started_at, self.last_sample_at = sent, time.monotonic()
        log.info("%s: LPM01A %r streaming at %d Hz, %.2f V", self.port, self.identity,
                 self.opts.rate_hz, self.opts.voltage_v)

    def mark(self) -> None:
        with self.lock:
            self.window, self.events, self.stream_errors = [], [], []

    def collect(self) -> Trace:
        """The stream since :meth:`mark`, once it has caught up with now; fails when the
        monitor stopped streaming, reported an error or dropped too many samples."""
        now = time.monotonic()
        elapsed = now - self.started_at
        # the stream up to a little after now (the closing edge came before the DUT's reply, and
        # the monitor sends each sample a few ms after its period); a monitor whose clock runs
        # slower than ours never gets there: past ``stall_s`` it is enough that it still streams
        due = (elapsed + CATCH_UP_S) * self.opts.rate_hz
        stall_s = max(1.0, self.opts.timeout_s / 5)
        while True:
            with self.lock:
                total, last = self.total, self.last_sample_at
            if total >= due:
                break
            waited = time.monotonic() - now
            if waited > stall_s:
                if time.monotonic() - last < stall_s / 2:
                    break  # still streaming, behind: its clock runs slower than ours
                raise MonitorError(
                    self.port, "the monitor stopped streaming mid-window",
                    expected=f"{self.opts.rate_hz} samples a second (about {due:.0f} by now)",
                    received=f"{total}, the last {time.monotonic() - last:.1f} s ago; last "
                             f"lines: {' | '.join(self.last) or 'nothing'}")
            time.sleep(0.01)
        with self.lock:
            values, events, errors = list(self.window), list(self.events), list(self.stream_errors)
        if errors:
            raise MonitorError(self.port, "the monitor reported an error while acquiring",
                               expected="samples", received=" | ".join(errors[:3]))
        trace = Trace(float(self.opts.rate_hz), self.opts.voltage_v,
                      np.asarray(values, np.float64), events)
        if trace.dropped_share > self.opts.max_dropped:
            raise MonitorError(self.port, "the monitor dropped samples",
                               expected=f"at most {self.opts.max_dropped:.2%} of a window's",
                               received=f"{trace.dropped} of {len(values)} "
                                        f"({trace.dropped_share:.2%}) missing")
        return trace

    def close(self) -> None:
        """Stop acquiring, power the DUT off, release control and the port (errors ignored:
        what was measured is already collected)."""
        if self.streaming:
            with contextlib.suppress(Exception):
                self.serial.write(b"stop\r\n")
                deadline = time.monotonic() + min(self.opts.timeout_s, 2.0)
                while time.monotonic() < deadline:
                    line = self.messages.get(timeout=max(deadline - time.monotonic(), 0.01))
                    if "Acquisition completed" in line:
                        break
            self.streaming = False
        for cmd in ("pwr off", "hrc"):
            with contextlib.suppress(Exception):
                self.command(cmd, timeout=min(self.opts.timeout_s, 1.0))
        self.stop_reading.set()
        self.reader.join(2.0)
        with contextlib.suppress(Exception):
            self.serial.close()


def open_lpm01a(options: LPM01AOptions) -> LPM01A:
    return LPM01A(options, virtual=False)


def open_virtual(options: LPM01AOptions) -> LPM01A:
    return LPM01A(options, virtual=True)


LPM01A_KIND = MonitorKind(
    name="lpm01a", open="bench.monitors.lpm01a:open_lpm01a", options=LPM01AOptions,
    description="STM32 X-NUCLEO-LPM01A (PowerShield) over its serial command protocol",
    exclusive=lambda options: str(options.get("port") or options.get("usb")))

VIRTUAL_KIND = MonitorKind(
    name="virtual", open="bench.monitors.lpm01a:open_virtual", options=LPM01AOptions,
    description="the LPM01A-compatible monitor of `edgebench board serve --mode energy` (a "
                "power model, not a measurement: its figures say `emulated`)",
    exclusive=lambda options: str(options.get("port") or options.get("usb")))
