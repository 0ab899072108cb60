"""Joulescope JS220 / JS110 through the ``joulescope`` package (``edgebench[joulescope]``).

Set up as MLPerf Tiny's runner does: raw source at ``raw_rate_hz``, sensor powered, the
``current_lsb`` channel carrying general-purpose input ``gpi`` (the DUT's timestamp pin); a
reader thread sums current × voltage over ``raw_rate_hz / rate_hz`` raw samples into one sample
of energy and marks each rising edge of the input. Samples the stream buffer lost (the reader
fell behind) count as dropped.

Options (device file ``energy.monitor``): ``serial_number`` (which Joulescope, when several are
attached), ``rate_hz`` (1000), ``raw_rate_hz`` (1,000,000), ``io_voltage`` ("3.3V", the GPI
logic level), ``max_dropped`` (0.001), ``timeout_s`` (5).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from typing import Any, Literal

import numpy as np
from pydantic import Field

from bench.errors import Strict
from bench.monitors.base import Monitor, MonitorError, MonitorKind, Trace

log = logging.getLogger(__name__)

INSTALL = "pip install 'edgebench[joulescope]'"


class JoulescopeOptions(Strict):
    serial_number: str | None = Field(None, description="the Joulescope to use when several "
                                                        "are attached")
    rate_hz: int = Field(1000, gt=0, le=100_000, description="energy samples per second")
    raw_rate_hz: int = Field(1_000_000, gt=0, description="the instrument's sampling rate")
    io_voltage: Literal["1.8V", "2.1V", "2.5V", "2.7V", "3.0V", "3.3V", "3.6V", "5.0V"] = "3.3V"
    gpi: Literal[0, 1] = Field(0, description="the input wired to the DUT's timestamp pin")
    max_dropped: float = Field(0.001, ge=0, lt=1)
    timeout_s: float = Field(5.0, gt=0)


def _package() -> Any:
    try:
        import joulescope
    except ImportError as exc:
        raise MonitorError("joulescope", "the Joulescope monitor needs the `joulescope` "
                           "package, which is not installed",
                           expected=f"it installed: {INSTALL}", received=str(exc)) from None
    return joulescope


def fold(carry: np.ndarray, level: bool | None, current: np.ndarray, voltage: np.ndarray,
         gpi: np.ndarray, stride: int, raw_rate_hz: float
         ) -> tuple[np.ndarray, list[int], np.ndarray, bool]:
    """Raw samples into energy per period of ``stride`` raw samples: the completed periods'
    energies (J), each rising edge of ``gpi`` as the index of the period it falls in (counted
    from the first completed one), the raw energies left over and the input's last level."""
    raw = np.concatenate([carry, current * voltage / raw_rate_hz])
    full = len(raw) // stride * stride
    before = np.concatenate([[gpi[0] if level is None else level], gpi[:-1]])
    rising = np.flatnonzero(gpi & ~before) + len(carry)
    sums = raw[:full].reshape(-1, stride).sum(axis=1)
    return sums, [int(r // stride) for r in rising], raw[full:], bool(gpi[-1])


class Joulescope(Monitor):
    """An open JS220 or JS110 streaming into its buffer; a thread turns raw samples into
    energy per period and GPI edges."""

    description = "Joulescope JS220 / JS110"

    def __init__(self, opts: JoulescopeOptions) -> None:
        joulescope = _package()
        self.opts = opts
        found = list(joulescope.scan(config="off"))
        if opts.serial_number is not None:
            found = [d for d in found if opts.serial_number in str(d)]
        if not found:
            wanted = f" with serial number {opts.serial_number}" if opts.serial_number else ""
            raise MonitorError("joulescope", "no Joulescope attached",
                               expected=f"a JS220 or JS110{wanted} on USB", received="none")
        self.device = found[0]
        self.port = str(self.device)
        try:
            self.device.open()
        except Exception as exc:
            raise MonitorError(self.port, "cannot open the Joulescope", received=str(exc)) from exc
        self.stride = max(1, opts.raw_rate_hz // opts.rate_hz)
        self.lock = threading.Lock()
        self.window: list[float] = []
        self.events: list[int] = []
        self.voltages: list[float] = []
        self.running = threading.Event()
        self.reader: threading.Thread | None = None
        self.error = ""
        self.last_data_at = 0.0

    def start(self) -> None:
        d = self.device
        for name, value in (("source", "raw"), ("sensor_power", "on"), ("i_range", "auto"),
                            ("sampling_frequency", self.opts.raw_rate_hz),
                            ("io_voltage", self.opts.io_voltage),
                            ("current_lsb", f"gpi{self.opts.gpi}")):
            try:
                d.parameter_set(name, value)
            except Exception as exc:
                raise MonitorError(self.port, f"cannot set {name} = {value!r}",
                                   received=str(exc)) from exc
        d.start()
        self.running.set()
        self.last_data_at = time.monotonic()
        self.reader = threading.Thread(target=self._read_loop, daemon=True,
                                       name=f"joulescope {self.port}")
        self.reader.start()

    def _read_loop(self) -> None:
        last_id: int | None = None
        carry = np.zeros(0)  # raw energies of a sample period not yet complete
        level: bool | None = None
        while self.running.is_set():
            try:
                buffer = self.device.stream_buffer
                start, end = buffer.sample_id_range
                if last_id is None:
                    last_id = start
                if last_id >= end:
                    time.sleep(0.002)
                    continue
                lost = max(start - last_id, 0)
                data = buffer.samples_get(max(last_id, start), end,
                                          fields=["current", "voltage", "current_lsb"])
            except Exception as exc:
                self.error = f"stream read failed: {exc}"
                return
            last_id = end
            signals = data["signals"]
            i = np.asarray(signals["current"]["value"], np.float64)
            v = np.asarray(signals["voltage"]["value"], np.float64)
            gpi = np.asarray(signals["current_lsb"]["value"]) > 0
            n = min(len(i), len(v), len(gpi))
            if n == 0:
                continue
            sums, edges, carry, level = fold(carry, level, i[:n], v[:n], gpi[:n], self.stride,
                                             self.opts.raw_rate_hz)
            with self.lock:
                self.last_data_at = time.monotonic()
                self.window.extend([math.nan] * (lost // self.stride))
                self.voltages.append(float(np.mean(v[:n])))
                self.events.extend(len(self.window) + e for e in edges)
                self.window.extend(sums.tolist())

    def mark(self) -> None:
        with self.lock:
            self.window, self.events, self.voltages = [], [], []

    def collect(self) -> Trace:
        called = time.monotonic()  # wait for a transfer that ends after the window (+50 ms)
        stall_s = max(1.0, self.opts.timeout_s / 5)
        while (time.monotonic() - called < stall_s and not self.error
               and self.last_data_at < called + 0.05):
            time.sleep(0.01)
        with self.lock:
            values, events = list(self.window), list(self.events)
            volts = [x for x in self.voltages if math.isfinite(x)]
            stalled = time.monotonic() - self.last_data_at
        if self.error or stalled > max(1.0, self.opts.timeout_s / 5):
            raise MonitorError(self.port, "the Joulescope stopped streaming mid-window",
                               expected=f"samples at {self.opts.raw_rate_hz} Hz",
                               received=self.error or f"none for {stalled:.1f} s")
        trace = Trace(float(self.opts.rate_hz), float(np.mean(volts)) if volts else math.nan,
                      np.asarray(values, np.float64), events)
        if trace.dropped_share > self.opts.max_dropped:
            raise MonitorError(self.port, "the Joulescope's stream lost samples",
                               expected=f"at most {self.opts.max_dropped:.2%} of a window's",
                               received=f"{trace.dropped} of {len(values)} missing")
        return trace

    def close(self) -> None:
        self.running.clear()
        if self.reader is not None:
            self.reader.join(2.0)
        for call in (self.device.stop, self.device.close):
            with contextlib.suppress(Exception):
                call()


def open_joulescope(options: JoulescopeOptions) -> Joulescope:
    return Joulescope(options)


JOULESCOPE_KIND = MonitorKind(
    name="joulescope", open="bench.monitors.joulescope:open_joulescope",
    options=JoulescopeOptions, extra="joulescope",
    description="Joulescope JS220 / JS110 through the `joulescope` package "
                f"({INSTALL}); the DUT's timestamp pin on a general-purpose input",
    exclusive=lambda options: f"joulescope {options.get('serial_number') or ''}".strip())
