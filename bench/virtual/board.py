"""A virtual board: MLPerf Tiny performance-mode firmware on a pseudo-terminal or loopback TCP.

It answers the protocol's commands (``name``, ``profile``, ``timestamp``, ``db load``/``db``,
``db print``, ``infer N W``, ``results``; errors as ``e-[…]``) and runs the model in TFLite
Micro. ``profile`` names the MLPerf Tiny model id of a reference model (by content,
:mod:`bench.board.reference_models`), else the file's stem; ``m-results`` are printed as that
model's reference firmware prints them. ``m-lap-us`` comes from the host clock, or from a
simulated clock that advances by the estimator's latency of the model on a device and paces the
replies to match (:mod:`bench.virtual.clock`). ``fault`` makes it misbehave, for tests.
"""

from __future__ import annotations

import logging
import os
import random
import select
import socket
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bench.artifacts.tflite_info import inspect
from bench.board import protocol as p
from bench.board.reference_models import model_id as reference_model_id
from bench.estimate.analysis import analyse
from bench.runners.io import IOSpec, dequantize, load_artifact
from bench.virtual.clock import Clock, HostClock, SimulatedClock
from bench.virtual.monitor import PowerTimeline

#: Model ids whose reference firmware prints truncated digits (the KWS reference's
#: ``th_results``); the others print ``%0.3f``.
TRUNCATED_RESULTS = frozenset({"kws01"})

log = logging.getLogger(__name__)

ClockKind = Literal["host", "simulated"]
Mode = Literal["performance", "energy"]
#: How long the energy-mode firmware holds its timestamp pin low (the reference port busy-waits
#: 100,000 nops, about a millisecond), drawing active current.
PULSE_S = 0.001
FAULTS = ("garbage", "silence", "error", "reset", "split", "overlong", "cut", "late-ready",
          "slow-error", "unwired")
#: Seconds the ``slow-error`` fault holds back the ``m-ready`` after an ``e-`` line (a slow UART
#: delivers a reply's end after the host has read its error).
SLOW_ERROR_S = 0.3
RESET_ON_INFER = 2  # the ``reset`` fault reboots the board on this ``infer`` command


@dataclass(frozen=True)
class PowerModel:
    """What the board draws: ``active_a`` while it computes, ``idle_a`` between, on the
    ``timeline`` the virtual monitor streams."""

    timeline: PowerTimeline
    active_a: float
    idle_a: float

    @classmethod
    def from_device(cls, device: dict[str, Any]) -> PowerModel:
        """Currents from a device file's ``power`` (``active_mw``, ``sleep_mw``, ``voltage_v``:
        3.3 V and a hundredth of the active power when not stated)."""
        power = device.get("power") or {}
        active_mw = power.get("active_mw")
        if not active_mw:
            raise ValueError(f"device {device.get('id')!r} states no power.active_mw: the "
                             "virtual energy bench draws its current from it")
        volts = power.get("voltage_v") or 3.3
        sleep_mw = power.get("sleep_mw")
        idle_a = (sleep_mw if sleep_mw is not None else active_mw / 100) / volts / 1e3
        return cls(PowerTimeline(idle_a), active_mw / volts / 1e3, idle_a)


def simulated_latency_us(model: bytes, device: dict[str, Any]) -> float:
    """The estimator's latency of ``model`` on ``device`` (a device file as a dict), in µs."""
    from bench.estimate.model import Target, estimate

    return estimate(analyse(model), Target.from_device(device)).latency.value * 1e3


def simulated_layer_shares(model: bytes, device: dict[str, Any]) -> list[tuple[str, float]]:
    """Each main-graph operator (TFLite Micro's name for it) with its share of the estimator's
    cycles for ``model`` on ``device``: how a simulated profiling firmware splits an invoke."""
    from bench.estimate.model import Target, estimate

    analysis, target = analyse(model), Target.from_device(device)
    ops = [op for op in analysis.ops if op.subgraph == 0]
    cycles = [estimate(replace(analysis, ops=(op,)), target).cycles for op in ops]
    whole = sum(cycles) or 1.0
    return [(op.op.removeprefix("CUSTOM:"), c / whole) for op, c in zip(ops, cycles, strict=True)]


#: Ticks per second of a simulated profiling firmware's clock (µs, as its ``m-lap-us``).
LAYER_TICK_HZ = 1_000_000


class Board:
    """The firmware's command interpreter: one command in, response lines out."""

    def __init__(self, model_path: Path, *, device: dict[str, Any] | None = None,
                 clock: ClockKind = "host", fault: str | None = None,
                 name: str = "edgebench-virtual-board", model_id: str | None = None,
                 mode: Mode = "performance", power: PowerModel | None = None,
                 profile: bool = False) -> None:
        from bench.runners.tflm import open_model

        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r} (known: {', '.join(FAULTS)})")
        data = load_artifact(model_path)
        info = inspect(data, str(model_path))
        if len(info.inputs) != 1:
            raise ValueError(f"{model_path}: the protocol loads one input; the model has "
                             f"{len(info.inputs)}")
        self.model = open_model(data, info, str(model_path))
        self.reset_state = info.has_variables
        self.in_spec: IOSpec = self.model.in_specs[0]
        self.input_bytes = int(np.prod(self.in_spec.shape)) * self.in_spec.dtype.itemsize
        self.name = name
        self.model_id = model_id or reference_model_id(data, model_path)
        self.format_results = (p.format_results_truncated if self.model_id in TRUNCATED_RESULTS
                               else p.format_results)
        self.fault = fault
        self.latency_us: float | None = None
        self.clock: Clock = HostClock()
        if clock == "simulated":
            if device is None:
                raise ValueError("a simulated clock needs a device (--device ID)")
            self.latency_us = simulated_latency_us(data, device)
            self.clock = SimulatedClock()
        if mode == "energy" and power is None:
            raise ValueError("energy mode needs the board's power model (a device file with "
                             "power.active_mw)")
        self.mode, self.power = mode, power
        self.layer_shares: list[tuple[str, float]] | None = None
        if profile:  # a firmware built with profiling, its operators split as the estimator does
            if device is None:
                raise ValueError("a profiling firmware's layers need a device (--device ID)")
            self.layer_shares = simulated_layer_shares(data, device)
        self.infers = 0
        self.expected = 0
        self.buffer = bytearray()
        self.last_results = self.format_results([])

    # --- clock and model ---------------------------------------------------------------------

    def now_us(self) -> int:
        return self.clock.now_us()

    def _invoke(self, raw: np.ndarray, times: int) -> tuple[list[np.ndarray], int]:
        """Run the model ``times`` times from the clock's last reading; its outputs and the time
        after (on a simulated clock, ``times`` latencies later, and no sooner in wall time)."""
        outputs: list[np.ndarray] = []
        simulated_s = times * (self.latency_us or 0.0) / 1e6
        if self.power is not None and self.latency_us is not None:
            start = time.monotonic()  # the clock paces the computation to its latency
            self.power.timeline.busy(start, start + simulated_s, self.power.active_a)
        elif self.power is not None:
            self.power.timeline.set(self.power.active_a)
        for _ in range(times):
            outputs = self.model.run([raw], self.reset_state)
        after = self.clock.elapse(times * (self.latency_us or 0.0))
        if self.power is not None and self.latency_us is None:
            self.power.timeline.set(self.power.idle_a)
        return outputs, after

    def timestamp(self) -> list[str]:
        """``th_timestamp``: an ``m-lap-us`` line, or in energy mode a pulse on the timestamp
        pin (its falling edge marks the monitor's stream) and no text."""
        if self.power is None or self.mode != "energy":
            return [f"m-lap-us-{self.now_us()}"]
        start = time.monotonic()
        if self.fault != "unwired":  # the pin reaches the monitor
            self.power.timeline.edge(start)
        self.power.timeline.busy(start, start + PULSE_S, self.power.active_a)
        time.sleep(PULSE_S)
        self.now_us()
        return []

    def boot(self) -> list[str]:
        """The boot banner (and a reset of the loaded input)."""
        self.buffer, self.expected = bytearray(), 0
        banner = p.BOOT_ENERGY if self.mode == "energy" else p.BOOT_PERFORMANCE
        return [banner, *self.timestamp(), p.INIT_DONE, p.READY]

    # --- commands ----------------------------------------------------------------------------

    def handle(self, text: str) -> list[str]:
        """The response lines to one command (without its ``%``), ``m-ready`` included."""
        tokens = text.split()
        if not tokens:
            return [p.READY]
        handler: Callable[[list[str]], list[str]] | None = {
            "name": lambda a: [f"m-name-dut-[{self.name}]"],
            "profile": lambda a: [f"m-profile-[{p.PROFILE}]", f"m-model-[{self.model_id}]"],
            "timestamp": lambda a: self.timestamp(),
            "db": self._db,
            "infer": self._infer,
            "results": lambda a: [self.last_results],
            **({"layers": self._layers} if self.layer_shares is not None else {}),
        }.get(tokens[0])
        if handler is None:
            return [f"e-[Unknown command: {tokens[0]}]", p.READY]
        if tokens[0] == "infer" and self.fault == "reset":
            self.infers += 1
            if self.infers == RESET_ON_INFER:
                return self.boot()
        return handler(tokens[1:]) + [p.READY]

    def _db(self, args: list[str]) -> list[str]:
        if not args:
            return ["e-[Command 'db' requires a subcommand or hex data]"]
        if args[0] == "load":
            if len(args) < 2:
                return ["e-[Command 'db load' requires the # of bytes]"]
            try:
                n = int(args[1])
            except ValueError:
                return ["e-[Command 'db load' requires the # of bytes]"]
            if n <= 0:
                return ["e-[Command 'db load' must be >0 bytes]"]
            if n > p.MAX_INPUT_BYTES:
                return [f"e-[Command 'db load' exceeds buffer maximum of {p.MAX_INPUT_BYTES} "
                        "bytes]"]
            self.buffer, self.expected = bytearray(), n
            return [f"m-[Expecting {n} bytes]"]
        if args[0] == "print":
            return [f"m-buffer-{'-'.join(f'{b:02x}' for b in self.buffer[i:i + 8])}"
                    for i in range(0, len(self.buffer), 8)]
        digits = args[0]
        if len(digits) % 2:
            return ["e-[Insufficent number of hex digits]"]
        bad = next((c for c in digits if c not in "0123456789abcdefABCDEF"), None)
        if bad is not None:
            return [f"e-[Invalid hex digit '{bad}']"]
        room = max(self.expected - len(self.buffer), 0)
        self.buffer += bytes.fromhex(digits)[:room]
        if self.expected and len(self.buffer) >= self.expected:
            self.expected = 0
            return ["m-load-done"]
        return []

    def _wrong_input(self) -> str:
        return (f"e-[Input buffer holds {len(self.buffer)} bytes; the model expects "
                f"{self.input_bytes}]")

    def _loaded(self) -> np.ndarray:
        return np.frombuffer(bytes(self.buffer), self.in_spec.dtype).reshape(self.in_spec.shape)

    def _layers(self, args: list[str]) -> list[str]:
        """``layers%`` as edgebench's profiling firmware answers it: one invoke of the loaded
        input, each operator's ticks (its share of the invoke) and the invoke's."""
        assert self.layer_shares is not None
        if len(self.buffer) != self.input_bytes:
            return [self._wrong_input()]
        before = self.now_us()
        _, after = self._invoke(self._loaded(), 1)
        total = (after - before) % (1 << 32)
        return [f"m-layers-hz-{LAYER_TICK_HZ}",
                *(f"m-layer-{i}-{op}-{round(total * share)}"
                  for i, (op, share) in enumerate(self.layer_shares)),
                f"m-layers-total-{total}"]

    def _infer(self, args: list[str]) -> list[str]:
        try:
            n = int(args[0]) if args else 1
            w = int(args[1]) if len(args) > 1 else 10
        except ValueError:
            return ["e-[Inference iterations must be >0]"]
        if n <= 0:
            return ["e-[Inference iterations must be >0]"]
        if w < 0:
            return ["e-[Inference warmup must be >=0]"]
        if self.fault == "error":
            return ["e-[Inference failed: injected fault]"]
        if len(self.buffer) != self.input_bytes:
            return [self._wrong_input()]
        raw = self._loaded()
        lines = [f"m-warmup-start-{w}"]
        self.now_us()  # the warmup starts now
        self._invoke(raw, w)
        lines += ["m-warmup-done", f"m-infer-start-{n}", *self.timestamp()]
        outputs, _ = self._invoke(raw, n)
        lines += [*self.timestamp(), "m-infer-done"]

        values = np.concatenate([dequantize(o, spec).reshape(-1)
                                 for o, spec in zip(outputs, self.model.out_specs, strict=True)])
        self.last_results = self.format_results(values.tolist())
        if self.fault == "overlong":  # beyond what the link allows this model's results
            return ["m-results-[" + "0.000," * ((p.MAX_LINE + 24 * values.size) // 6 + 10)]
        return lines + [self.last_results]


# --- links ---------------------------------------------------------------------------------------


class Link:
    """A byte pipe to the host: ``read(timeout)`` (b"" on timeout) and ``write``."""

    address = ""

    def read(self, timeout: float) -> bytes:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        raise NotImplementedError


class PtyLink(Link):
    """The master side of a raw-mode pseudo-terminal; ``address`` is the slave's path."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # the slave stays open: reads never fail between host sessions
        tty.setraw(self.master)
        self.address = os.ttyname(self.slave)

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.master], [], [], timeout)
        return os.read(self.master, 4096) if ready else b""

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.master, view):]


class TcpLink(Link):
    """A loopback TCP port (pyserial ``socket://``), one host connection at a time."""

    def __init__(self, port: int = 0) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.address = f"socket://127.0.0.1:{self.server.getsockname()[1]}"
        self.conn: socket.socket | None = None
        self.on_connect: Callable[[], None] = lambda: None

    def read(self, timeout: float) -> bytes:
        if self.conn is None:
            ready, _, _ = select.select([self.server], [], [], timeout)
            if not ready:
                return b""
            self.conn, _ = self.server.accept()
            self.on_connect()
            return b""
        ready, _, _ = select.select([self.conn], [], [], timeout)
        if not ready:
            return b""
        data = self.conn.recv(4096)
        if not data:
            self.conn.close()
            self.conn = None
        return data

    def write(self, data: bytes) -> None:
        if self.conn is not None:
            try:
                self.conn.sendall(data)
            except OSError:
                self.conn = None


def _send(link: Link, board: Board, lines: list[str], rng: random.Random) -> None:
    if board.fault == "silence":
        return
    if board.fault == "garbage":  # what a wrong baud rate looks like
        for line in lines:
            link.write(bytes(rng.randrange(0x80, 0x100) for _ in line) + b"\r\n")
        return
    data = b"".join(f"{line}\r\n".encode() for line in lines)
    if board.fault == "slow-error" and lines and lines[0].startswith("e-"):
        link.write(f"{lines[0]}\r\n".encode())
        time.sleep(SLOW_ERROR_S)
        data = b"".join(f"{line}\r\n".encode() for line in lines[1:])
    if board.fault != "split":
        link.write(data)
        return
    i = 0
    while i < len(data):  # fragments of 1-24 bytes, stray NULs and CRs, short pauses
        step = rng.randint(1, 24)
        extra = rng.choice([b"", b"", b"\0", b"\r"])
        link.write(data[i:i + step] + extra)
        i += step
        if rng.random() < 0.05:
            time.sleep(0.001)


def serve(board: Board, link: Link, announce: Callable[[str], None],
          stop: Callable[[], bool] = lambda: False) -> None:
    """Run ``board`` on ``link`` until ``stop()``: boot banner, then one command per ``%``.

    Characters beyond the 80-character command buffer are dropped, as the firmware does.
    """
    rng = random.Random(0)
    if isinstance(link, TcpLink):
        link.on_connect = lambda: _send(link, board, board.boot(), rng)
    else:
        _send(link, board, board.boot(), rng)
    announce(link.address)
    cmd = bytearray()
    # what comes before the first reply when the port opened mid-banner: the tail of a line and
    # the banner's m-ready, or that m-ready alone (QEMU seen doing it)
    opening = {"cut": b"-init-done\r\nm-ready\r\n", "late-ready": b"m-ready\r\n"}.get(
        board.fault or "", b"")
    while not stop():
        data = link.read(0.2)
        for byte in data:
            if byte == ord("%"):
                text = cmd.decode("ascii", errors="replace").strip()
                cmd.clear()
                log.debug("command %r", text)
                if opening:
                    link.write(opening)
                    opening = b""
                _send(link, board, board.handle(text), rng)
            elif byte not in b"\r\n" and len(cmd) < p.COMMAND_BUFFER - 1:
                cmd.append(byte)
