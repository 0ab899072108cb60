"""The link to an attached board: one open serial connection speaking the MLPerf Tiny protocol.

:class:`BoardLink` opens a port (a path, a pyserial URL, or the attached board with a USB id),
handshakes, and sends commands with a deadline on every wait; :func:`connect` opens one from a
device's connection options. Used by the serial runner and by the firmware's arena sizing.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator

from bench.board import protocol as p
from bench.errors import PositiveFloat, PositiveInt, Strict, one_of

log = logging.getLogger(__name__)

_READ_POLL_S = 0.05
_US_WRAP = 2 ** 32  # firmware timestamps are 32-bit microseconds
#: Seconds a command waits, after an ``e-`` line, for the ``m-ready`` that ends the reply.
ERROR_GRACE_S = 2.0
BITS_PER_BYTE = 10  # a start bit, 8 data bits, a stop bit


class BoardError(RuntimeError):
    """The board could not be reached or misbehaved; names the port and the last lines.
    ``what`` is what went wrong alone (no port, no transcript): the same on every machine."""

    def __init__(self, message: str, what: str | None = None) -> None:
        super().__init__(message)
        self.what = message if what is None else what


#: Link protocols the serial runner speaks.
PROTOCOLS = ("mlperf-tiny",)


class SerialOptions(Strict):
    """A serial connection's options (device file ``connection:``), with their defaults."""

    usb: str | None = Field(None, description='USB "VID:PID" of the board, in hex')
    port: str | None = Field(None, validate_default=True,
                             description="serial port path or pyserial URL")
    protocol: Annotated[str, one_of("protocol", PROTOCOLS)] = "mlperf-tiny"
    baud: PositiveInt = 115200
    timeout_s: PositiveFloat = 5.0
    min_window_s: PositiveFloat = 10.0
    min_inferences: PositiveInt = 10
    windows: PositiveInt = 5
    model: str | None = Field(None, description="expected m-model id")
    name: str | None = Field(None, description="expected m-name-dut")
    firmware: str | None = Field(None, description="the flashed image's version or SHA-256")

    @field_validator("usb")
    @classmethod
    def _vid_pid(cls, usb: str | None) -> str | None:
        if usb is not None and not re.fullmatch(r"[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}", str(usb)):
            raise ValueError(f'expected "VID:PID" in hex, e.g. "0483:374b" (got {usb!r})')
        return usb

    @field_validator("port")
    @classmethod
    def _port_or_usb(cls, port: str | None, info: ValidationInfo) -> str | None:
        if "usb" not in info.data:  # a malformed usb id: its own error says so
            return port
        if not port and not info.data["usb"]:
            raise ValueError('Field required: a serial device gives `port` (a path or a '
                             'pyserial URL) or `usb: "VID:PID"`')
        return port


def resolve_port(opts: SerialOptions) -> str:
    """The port from ``port`` (path or URL) or ``usb: "VID:PID"`` via the attached ports."""
    if opts.port:
        return opts.port
    if not opts.usb:
        raise BoardError("a serial device needs `port` (a path or pyserial URL) or "
                         "`usb: \"VID:PID\"` in its connection")
    from serial.tools import list_ports

    vid, pid = (int(x, 16) for x in opts.usb.split(":"))
    ports = list(list_ports.comports())
    for info in ports:
        if info.vid == vid and info.pid == pid:
            return str(info.device)
    seen = ", ".join(f"{i.device} ({i.vid or 0:04x}:{i.pid or 0:04x})" for i in ports) or "none"
    raise BoardError(f"no serial port with USB id {opts.usb} (attached: {seen})")


#: The longest results line a link accepts, whatever the model's outputs (16 MiB).
MAX_RESULTS_LINE = 16 << 20


class BoardLink:
    """One open serial connection speaking the protocol; every wait has a deadline."""

    def __init__(self, opts: SerialOptions) -> None:
        import serial

        self.opts, self.port = opts, resolve_port(opts)
        self.last: deque[str] = deque(maxlen=8)
        self.splitter = p.LineSplitter()
        kwargs: dict[str, Any] = {"baudrate": opts.baud, "timeout": _READ_POLL_S,
                                  "write_timeout": opts.timeout_s}
        if "://" not in self.port:
            kwargs["exclusive"] = True  # a port another process holds fails now, not later
        try:
            self.serial = serial.serial_for_url(self.port, **kwargs)
        except (serial.SerialException, OSError, ValueError) as exc:
            busy = " (port busy: another process holds it)" if "lock" in str(exc) else ""
            raise BoardError(f"{self.port}: cannot open the port{busy}: {exc}") from exc
        self.serial.reset_input_buffer()
        self.fresh = True  # no line read since the port opened

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.serial.close()

    def wire_s(self, chars: int) -> float:
        """Seconds ``chars`` characters take on the board's UART (at ``baud``)."""
        return chars * BITS_PER_BYTE / self.opts.baud

    def fail(self, what: str) -> BoardError:
        lines = " | ".join(self.last) or "nothing"
        pending = self.splitter.pending
        tail = f"; unterminated: {pending!r}" if pending else ""
        return BoardError(f"{self.port}: {what}; last lines received: {lines}{tail}", what)

    def command(self, text: str, timeout: float | None = None,
                booting: bool = False) -> list[str]:
        """Send ``text%`` and return the response lines up to ``m-ready`` (excluded).

        Raises :class:`BoardError` on an ``e-`` line, a boot banner (unless ``booting``: then
        the banner and its ``m-ready`` are skipped, as is a lone ``m-ready`` before anything else
        the port gave but the tail of a cut line: the end of a banner the port opened too late
        for), garbage, an overlong line or no ``m-ready`` within ``timeout`` (default
        ``timeout_s``).
        """
        import serial

        try:
            data = p.command(text)
        except p.ProtocolError as exc:
            raise self.fail(str(exc)) from exc
        log.debug("%s ← %s", self.port, data)
        try:
            self.serial.write(data)
        except (serial.SerialException, OSError) as exc:
            raise self.fail(f"cannot write `{text}%`: {exc}") from exc
        deadline = time.monotonic() + (self.opts.timeout_s if timeout is None else timeout)
        lines: list[str] = []
        error = ""  # the first e- line
        in_banner = False
        opening = booting and self.fresh  # nothing read yet since the port opened
        while time.monotonic() < deadline:
            try:
                chunk = self.serial.read(max(1, self.serial.in_waiting))
                new = self.splitter.feed(chunk)
            except p.ProtocolError as exc:
                raise self.fail(f"after `{text}%`: {exc}") from exc
            except (serial.SerialException, OSError) as exc:
                raise self.fail(f"read failed after `{text}%`: {exc}") from exc
            for line in new:
                self.last.append(line[:120])
                first, self.fresh = self.fresh, False
                if p.is_garbage(line):
                    if first and booting and line.isascii() and line.isprintable():
                        continue  # the tail of a line the board was printing as the port opened
                    raise self.fail(f"unreadable bytes after `{text}%` (wrong baud rate? "
                                    f"expected {self.opts.baud})")
                if line in p.BOOT_MARKERS:
                    if not booting:
                        raise self.fail(f"the board reset during `{text}%` (boot banner "
                                        f"{line!r})")
                    in_banner = True
                    continue
                if line.startswith("e-"):
                    # the firmware ends an error with m-ready too: read it, so that the next
                    # command does not take this one's m-ready for its own
                    error = error or line
                    deadline = min(deadline, time.monotonic() + ERROR_GRACE_S)
                    continue
                if line == p.READY:
                    if in_banner:
                        in_banner = False
                        continue
                    if opening and not lines and not error:  # the banner went out before
                        opening = False  # the port opened (QEMU drops a pty's output until
                        continue  # it is opened)
                    if error:
                        raise self.fail(f"`{text}%` failed: {error}")
                    return lines
                lines.append(line)
        if error:
            raise self.fail(f"`{text}%` failed: {error}")
        waited = self.opts.timeout_s if timeout is None else timeout
        if p.is_garbage(self.splitter.pending):
            raise self.fail(f"unreadable bytes and no m-ready within {waited:.1f} s after "
                            f"`{text}%` (wrong baud rate? expected {self.opts.baud})")
        raise self.fail(f"no m-ready within {waited:.1f} s after `{text}%`")

    def expect_outputs(self, elements: int) -> None:
        """Let a results line hold ``elements`` values (up to 24 characters each): a model's
        output can print longer than the protocol's usual line bound, which stays the floor,
        and :data:`MAX_RESULTS_LINE` the ceiling (a shape a model file merely declares)."""
        self.splitter.max_line = max(self.splitter.max_line,
                                     min(p.MAX_LINE + 24 * elements, MAX_RESULTS_LINE))

    def handshake(self) -> tuple[str, str]:
        """``name%`` and ``profile%``: the board's name and model id (checked when expected)."""
        name = next((v for v in map(p.bracketed, self.command("name", booting=True)) if v),
                    None)
        if name is None:
            raise self.fail("no m-name-dut-[…] reply to `name%`")
        model = ""
        for line in self.command("profile"):
            if line.startswith("m-model-"):
                model = p.bracketed(line) or ""
        if self.opts.name is not None and name != self.opts.name:
            raise self.fail(f"board name {name!r}, expected {self.opts.name!r}")
        if self.opts.model is not None and model != self.opts.model:
            raise self.fail(f"board runs model {model!r}, the suite expects "
                            f"{self.opts.model!r}")
        log.info("%s: board %r running model %r", self.port, name, model)
        return name, model

    def load(self, data: bytes) -> None:
        """Send one input: ``db load N`` and ``db <hex>`` chunks; expects ``m-load-done``."""
        done = False
        for cmd in p.load_commands(data):
            done = "m-load-done" in self.command(cmd) or done
        if not done:
            raise self.fail(f"no m-load-done after loading {len(data)} bytes")

    def infer(self, n: int, warmup: int, timeout: float) -> tuple[int, list[float]]:
        """``infer N W``: the timed window in µs (between the two ``m-lap-us``) and results."""
        window, results, _ = self.infer_lines(n, warmup, timeout)
        return window, results

    def infer_lines(self, n: int, warmup: int, timeout: float
                    ) -> tuple[int, list[float], list[str]]:
        """:meth:`infer` with every line of the response (a firmware may print more)."""
        lines = self.command(f"infer {n} {warmup}", timeout=timeout)
        laps = [t for t in map(p.lap_us, lines) if t is not None]
        found = [r for r in map(p.results, lines) if r is not None]
        if len(laps) != 2 or not found:
            raise self.fail(f"`infer {n} {warmup}%` gave {len(laps)} m-lap-us lines and "
                            f"{len(found)} m-results lines (expected 2 and 1)")
        return (laps[1] - laps[0]) % _US_WRAP, found[-1], lines

    def layers(self, timeout: float | None = None) -> p.LayerTicks:
        """``layers%``: one invoke of the loaded input, profiled per operator by a firmware
        built with profiling (edgebench's); :class:`BoardError` when the firmware does not
        answer it (``e-[Unknown command: layers]`` from one without)."""
        lines = self.command("layers", timeout=timeout)
        try:
            return p.layer_ticks(lines)
        except p.ProtocolError as exc:
            raise self.fail(str(exc)) from exc

    def op_output(self, op: int, timeout: float | None = None) -> p.OpOutput:
        """``tensor N%``: one invoke of the loaded input printing operator ``op``'s first
        output (a firmware built with profiling, edgebench's); :class:`BoardError` otherwise."""
        lines = self.command(f"tensor {op}", timeout=timeout)
        try:
            return p.op_output(lines)
        except p.ProtocolError as exc:
            raise self.fail(str(exc)) from exc


@contextlib.contextmanager
def connect(options: dict[str, Any]) -> Iterator[BoardLink]:
    """An open, handshaken :class:`BoardLink` for a device's connection options."""
    fields = SerialOptions.model_fields
    link = BoardLink(SerialOptions.model_validate(
        {k: v for k, v in options.items() if k in fields}))
    try:
        link.handshake()
        yield link
    finally:
        link.close()


