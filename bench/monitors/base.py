"""What every power monitor gives: a stream of per-sample energy with the DUT's timestamp edges.

MLPerf Tiny's energy mode (the published runner's ``print_energy_results``): the monitor samples
the DUT's supply at ``rate_hz`` while it runs ``infer N W``; the DUT's ``th_timestamp`` pulls a
GPIO low before and after the timed loop, and the monitor marks each edge in its stream. A
window's energy is the sum of the samples between its **last two** edges (there may be stray
edges before), divided by N; a window's duration is that span on the monitor's own clock.

Units: a :class:`Trace` holds energy in J per sample (current × voltage ÷ rate); records get
µJ per inference and mW.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from bench import registry

#: How a monitor's figures are labelled: ``board`` (an instrument on a real board) or
#: ``emulated`` (edgebench's virtual bench: a power model, not a measurement).
MonitorMethod = Literal["board", "emulated"]

#: Format tag of a saved trace (``samples/<cell>.trace.json``).
TRACE_FORMAT = "edgebench-energy-trace-1"
#: The most samples a saved trace file may hold (bounded parsing: 1 h at 1 kHz × 5 windows).
MAX_TRACE_SAMPLES = 20_000_000


class MonitorError(RuntimeError):
    """A monitor absent, silent, answering garbage, dropping samples or stopping: names the
    port, what was expected and what came."""

    def __init__(self, port: str, what: str, expected: str | None = None,
                 received: str | None = None) -> None:
        parts = [f"{port}: {what}"]
        if expected is not None:
            parts.append(f"expected {expected}")
        if received is not None:
            parts.append(f"received {received}")
        super().__init__("; ".join(parts))
        self.port, self.what, self.expected, self.received = port, what, expected, received


class WindowError(ValueError):
    """A window whose stream cannot give an energy (too few timestamp edges, too short)."""


@dataclass
class Trace:
    """The stream of one window: energy per sample in J (NaN where the monitor dropped one),
    the sample index at each timestamp edge (how many samples came before it) and the supply
    voltage the monitor applied."""

    rate_hz: float
    voltage_v: float
    energy_j: np.ndarray
    events: list[int] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        return int(np.count_nonzero(np.isnan(self.energy_j)))

    @property
    def dropped_share(self) -> float:
        return self.dropped / len(self.energy_j) if len(self.energy_j) else 0.0

    @property
    def current_a(self) -> np.ndarray:
        """The mean current of each sample period."""
        return self.energy_j * self.rate_hz / self.voltage_v


@dataclass(frozen=True)
class WindowEnergy:
    """One window's figures: per inference and in total, between its last two edges."""

    inferences: int
    energy_j: float  # the whole window
    duration_s: float
    start: int  # sample index of the opening edge
    stop: int  # sample index of the closing edge
    edges: int  # how many edges the window's stream held
    dropped_share: float  # of the samples between the two edges

    @property
    def energy_uj_per_inference(self) -> float:
        return self.energy_j * 1e6 / self.inferences

    @property
    def power_mw(self) -> float:
        return self.energy_j * 1e3 / self.duration_s

    @property
    def latency_ms(self) -> float:
        return self.duration_s * 1e3 / self.inferences


def window_energy(trace: Trace, inferences: int) -> WindowEnergy:
    """The energy between the trace's last two timestamp edges, as the published runner
    integrates it; a dropped sample counts as the mean of the window's others."""
    if inferences < 1:
        raise WindowError(f"a window runs at least one inference (got {inferences})")
    if len(trace.events) < 2:
        raise WindowError(
            f"the window's stream holds {len(trace.events)} timestamp edge(s); energy mode "
            "needs 2 (the DUT's th_timestamp before and after the timed loop): is the DUT "
            "flashed with energy-mode firmware and its timestamp pin wired to the monitor?")
    start, stop = trace.events[-2], trace.events[-1]
    if stop <= start:
        raise WindowError(f"the last two timestamp edges are {stop - start} samples apart at "
                          f"{trace.rate_hz:g} Hz: no span to integrate")
    span = trace.energy_j[start:stop]
    received = span[~np.isnan(span)]
    if not len(received):
        raise WindowError("every sample between the last two timestamp edges was dropped")
    energy = float(received.sum()) * len(span) / len(received)
    return WindowEnergy(inferences, energy, len(span) / trace.rate_hz, start, stop,
                        len(trace.events), 1 - len(received) / len(span))


def median_window(windows: list[WindowEnergy]) -> WindowEnergy:
    """The window of median energy per inference (MLPerf Tiny's score; windows are odd)."""
    ranked = sorted(windows, key=lambda w: w.energy_uj_per_inference)
    return ranked[len(ranked) // 2]


# --- saved traces --------------------------------------------------------------------------------


def _pack(values: np.ndarray) -> str:
    return base64.b64encode(np.asarray(values, "<f4").tobytes()).decode("ascii")


def _unpack(text: str, limit: int) -> np.ndarray:
    if not isinstance(text, str) or len(text) > (limit * 4 * 4) // 3 + 4:
        raise ValueError("a trace's samples are a base64 string within the size limit")
    return np.frombuffer(base64.b64decode(text, validate=True), "<f4").astype(np.float64)


def traces_to_json(traces: list[Trace], windows: list[WindowEnergy],
                   monitor: str, method: str) -> dict[str, Any]:
    """Every window's raw current trace (float32 amperes, base64), compact beside the samples."""
    return {"format": TRACE_FORMAT, "monitor": monitor, "method": method, "unit": "A",
            "windows": [{"rate_hz": t.rate_hz, "voltage_v": t.voltage_v,
                         "current_a": _pack(t.current_a), "events": list(t.events),
                         "start": w.start, "stop": w.stop, "inferences": w.inferences,
                         "energy_uj": w.energy_j * 1e6}
                        for t, w in zip(traces, windows, strict=True)]}


def traces_from_json(data: Any) -> list[dict[str, Any]]:
    """Read a saved trace file back: each window's ``time_s``, ``current_a`` (NaN = dropped),
    ``events``, ``start``/``stop`` and figures; ValueError when malformed."""
    if not isinstance(data, dict) or data.get("format") != TRACE_FORMAT:
        raise ValueError(f"not an energy trace (expected format {TRACE_FORMAT})")
    windows = data.get("windows")
    if not isinstance(windows, list):
        raise ValueError("an energy trace lists its windows")
    out, total = [], 0
    for i, w in enumerate(windows):
        try:
            rate = float(w["rate_hz"])
            current = _unpack(w["current_a"], MAX_TRACE_SAMPLES - total)
            events = [int(e) for e in w["events"]]
            if not (math.isfinite(rate) and rate > 0):
                raise ValueError(f"rate_hz {rate!r}")
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"window {i} of the energy trace is malformed: {e}") from None
        total += len(current)
        out.append({"time_s": np.arange(len(current)) / rate, "current_a": current,
                    "rate_hz": rate, "voltage_v": float(w.get("voltage_v", 0.0)),
                    "events": events, "start": int(w.get("start", 0)),
                    "stop": int(w.get("stop", 0)), "inferences": int(w.get("inferences", 0)),
                    "energy_uj": float(w.get("energy_uj", math.nan))})
    return out


# --- the plugin axis -----------------------------------------------------------------------------


class Monitor:
    """An open monitor: :meth:`start` powers the DUT and starts streaming; :meth:`mark` forgets
    the stream so far (a window begins); :meth:`collect` returns the stream since the mark."""

    port: str = ""
    method: MonitorMethod = "board"
    description: str = ""

    def start(self) -> None:
        raise NotImplementedError

    def mark(self) -> None:
        raise NotImplementedError

    def collect(self) -> Trace:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class MonitorKind:
    """A registered monitor: ``open`` (``"module:function"``, ``fn(options) -> Monitor``) with
    its pydantic ``options`` model (the device file's ``energy.monitor`` keys but ``kind``)."""

    name: str
    open: str
    options: type[BaseModel]
    #: the pip extra it needs, or ""
    extra: str = ""
    description: str = ""
    #: the resource it holds (a port), for exclusive scheduling
    exclusive: Callable[[dict[str, Any]], str | None] = lambda options: None

    def parse_options(self, options: dict[str, Any]) -> BaseModel:
        return self.options.model_validate({k: v for k, v in options.items() if k != "kind"})


def monitor_kind(name: str) -> MonitorKind:
    """The registered monitor ``name`` (entry points ``edgebench.monitors`` included)."""
    return registry.monitors.get(name)


def open_monitor(options: dict[str, Any]) -> Monitor:
    """An opened (not yet started) monitor for a device file's ``energy.monitor`` mapping."""
    kind = monitor_kind(str(options.get("kind")))
    return registry.load_ref(kind.open)(kind.parse_options(options))
