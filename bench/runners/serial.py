"""Serial runner: boards flashed with MLPerf Tiny firmware, over the EEMBC serial protocol.

The model runs on the board (it was flashed with it); the artifact only gives the input tensor's
shape, dtype and quantization, so inputs are sent as the board expects them. Connection options
(device file ``connection:``): ``port`` (a path or a pyserial URL such as ``socket://host:port``)
or ``usb: "VID:PID"``; ``baud`` (115200); ``timeout_s`` (5, per response); ``min_window_s`` (10,
the shortest timed window); ``min_inferences`` (10); ``windows`` (5); ``model`` (expected
``m-model`` id); ``name`` (expected ``m-name-dut``); ``firmware`` (the flashed image's version
or SHA-256: with it, a board's evaluation is cached like any other, keyed by it; without it the
harness cannot tell a reflashed board from the last one, so every run asks the board again).

``measure`` (method ``board``): five ``infer N W`` windows on five inputs, N chosen so a window
lasts ``min_window_s``; latency per window = (t1 − t0) / N; ``latency_p50`` is 1000 / the median
throughput. ``evaluate`` (method ``board``): every test-split input with ``infer 1 0``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from bench.artifacts.tflite_info import inspect
from bench.board import protocol as p
from bench.errors import Strict, one_of
from bench.results.metrics import task_metrics
from bench.runners.base import MetricMap, PositiveFloat, PositiveInt, Runner, RunRequest
from bench.runners.io import IOSpec, as_batch1, latency_stats, quantize, sample_inputs

log = logging.getLogger(__name__)

_READ_POLL_S = 0.05
_CALIBRATION_ROUNDS = 8
_US_WRAP = 2 ** 32  # firmware timestamps are 32-bit microseconds


class BoardError(RuntimeError):
    """The board could not be reached or misbehaved; names the port and the last lines."""


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

    def fail(self, what: str) -> BoardError:
        lines = " | ".join(self.last) or "nothing"
        pending = self.splitter.pending
        tail = f"; unterminated: {pending!r}" if pending else ""
        return BoardError(f"{self.port}: {what}; last lines received: {lines}{tail}")

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
                    raise self.fail(f"`{text}%` failed: {line}")
                if line == p.READY:
                    if in_banner:
                        in_banner = False
                        continue
                    if opening and not lines:  # the banner went out before the port opened
                        opening = False  # (QEMU drops a pty's output until it is opened)
                        continue
                    return lines
                lines.append(line)
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


@contextlib.contextmanager
def connect(options: dict[str, Any]) -> Iterator[BoardLink]:
    """An open, handshaken :class:`BoardLink` for a device's connection options."""
    link = BoardLink(SERIAL.parse_options(options))  # type: ignore[arg-type]
    try:
        link.handshake()
        yield link
    finally:
        link.close()


def input_spec(request: RunRequest) -> IOSpec:
    """The artifact's single input tensor (what the board's firmware expects)."""
    info = inspect(request.artifact.read_bytes(), str(request.artifact))
    if len(info.inputs) != 1:
        raise ValueError(f"the serial protocol loads one input; {request.artifact} has "
                         f"{len(info.inputs)}")
    t = info.inputs[0]
    return IOSpec(tuple(t.shape), np.dtype(t.dtype), t.scale, t.zero_point)


def output_elements(request: RunRequest) -> int:
    """How many values the artifact's outputs hold (what a results line prints)."""
    info = inspect(request.artifact.read_bytes(), str(request.artifact))
    return sum(math.prod(max(int(d), 1) for d in t.shape) for t in info.outputs)


def timed_windows(link: BoardLink, inputs: list[list[np.ndarray]], warmup: int,
                  windows: int, min_window_s: float, min_inferences: int) -> list[float]:
    """Nanoseconds per inference in ``windows`` ``infer N W`` windows, one input each, N raised
    until a window lasts ``min_window_s`` on the board's clock (as MLPerf Tiny times it)."""
    timeout_s = link.opts.timeout_s
    warmup = max(warmup, 0)
    n, wall_per_inf = max(min_inferences, 1), None
    link.load(inputs[0][0].tobytes())
    for _ in range(_CALIBRATION_ROUNDS):  # raise N until a window lasts min_window_s
        timeout = timeout_s + (3 * (n + warmup) * wall_per_inf if wall_per_inf
                               else max(3 * min_window_s, timeout_s))
        started = time.monotonic()
        window_us, _ = link.infer(n, warmup, timeout)
        wall_per_inf = (time.monotonic() - started) / (n + warmup)
        if window_us >= min_window_s * 1e6:
            break
        grow = min_window_s * 1e6 / window_us * 1.05 if window_us else 100.0
        n = math.ceil(n * min(grow, 100.0))
    else:
        raise link.fail(f"a window of {n} inferences still lasts under {min_window_s} s")
    log.info("%s: %d inferences per window", link.port, n)
    per_inf_ns: list[float] = []
    for i in range(windows):
        link.load(inputs[i % len(inputs)][0].tobytes())
        timeout = timeout_s + 3 * (n + warmup) * wall_per_inf
        window_us, _ = link.infer(n, warmup, timeout)
        per_inf_ns.append(window_us * 1e3 / n)
        log.info("%s: window %d: %d µs / %d = %.4f ms", link.port, i, window_us, n,
                 per_inf_ns[-1] / 1e6)
    return per_inf_ns


def measure(request: RunRequest) -> MetricMap:
    """Board latency from ``infer N W`` windows (method ``board``), as MLPerf Tiny scores it."""
    spec = input_spec(request)
    with connect(request.options) as link:
        link.expect_outputs(output_elements(request))
        opts = link.opts
        inputs = sample_inputs(request.dataset, [spec], opts.windows, request.seed)
        per_inf_ns = timed_windows(link, inputs, request.warmup, opts.windows,
                                   opts.min_window_s, opts.min_inferences)
    # p50 of the per-window latencies = 1000 / the median throughput (windows are few and odd)
    return latency_stats(per_inf_ns, "board")  # type: ignore[arg-type]


def board_predict(link: BoardLink, spec: IOSpec) -> Callable[[np.ndarray], np.ndarray]:
    """``predict(x_float) -> outputs`` on the board: each sample quantized, loaded and run with
    ``infer 1 0``; the outputs are the board's ``m-results``."""
    def predict(x: np.ndarray) -> np.ndarray:
        rows = []
        for sample in quantize(x, spec):
            link.load(as_batch1(sample, spec).tobytes())
            rows.append(np.asarray(link.infer(1, 0, link.opts.timeout_s)[1], np.float32))
        return np.stack(rows) if rows else np.zeros((0, 0), np.float32)

    return predict


def evaluate(request: RunRequest) -> MetricMap:
    """Task metrics from the board's ``m-results`` on every test input (method ``board``);
    nothing without a data set."""
    if request.dataset is None:
        log.info("no data set: the serial runner has no task metrics to evaluate")
        return {}
    from bench.datasets.base import Dataset

    spec = input_spec(request)
    with connect(request.options) as link:
        link.expect_outputs(output_elements(request))
        return task_metrics(Dataset.load(request.dataset), board_predict(link, spec), "board")


def versions() -> dict[str, str]:
    """pyserial's version (the board's firmware is checked by name and model id)."""
    with contextlib.suppress(PackageNotFoundError):
        return {"pyserial": version("pyserial")}
    return {}


SERIAL = Runner(
    name="serial",
    evaluate="bench.runners.serial:evaluate",
    measure="bench.runners.serial:measure",
    method="board",
    options=SerialOptions,
    suite_settings=("min_window_s",),
    versions=versions,
    cache_evaluate=lambda options: bool(options.get("firmware")),
    exclusive=lambda options: str(options.get("port") or options.get("usb")),
    description="a board with MLPerf Tiny firmware over its serial port (EEMBC protocol): "
                "latency from the board's timestamps, accuracy from its results",
)
