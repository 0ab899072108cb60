"""MLPerf Tiny's energy mode for the serial runner: a device file with an ``energy:`` block.

The board runs energy-mode firmware behind an IO manager (the connection's port) and is
supplied by a power monitor (``energy.monitor``). As the published runner does it: the monitor
is set up, powers the board and streams; after ``boot_s`` the host handshakes through the IO
manager; then per window an input is loaded, the stream marked, ``infer N W`` run, and the
window's energy integrated between its last two timestamp edges. N is raised until a window
lasts ``min_window_s`` on the monitor's clock (and at least ``min_inferences``); five windows on
five inputs; the score is the median energy per inference.

Figures: ``energy_uj`` (µJ per inference) and ``power_mw`` (mean power over the window) of the
median window, and latency from the windows' spans, all with the monitor's method: ``board``
for an instrument, ``emulated`` for edgebench's virtual bench. The record's
``details["energy"]`` keeps each window's figures, edge times, supply voltage and dropped-sample
share; the raw current trace goes beside the samples (``details["trace"]``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from bench.board.iomanager import DUT_BAUD, IOManagerLink
from bench.board.link import BoardLink, SerialOptions
from bench.monitors.base import (
    Monitor,
    Trace,
    WindowEnergy,
    median_window,
    open_monitor,
    traces_to_json,
    window_energy,
)
from bench.results.metrics import metric
from bench.runners.base import RunRequest
from bench.runners.io import Timed, latency_stats, sample_inputs

log = logging.getLogger(__name__)

_CALIBRATION_ROUNDS = 8


def energy_setup(request: RunRequest) -> dict[str, Any] | None:
    """The device file's ``energy`` block, or None (performance mode)."""
    energy = request.device.get("energy")
    return energy if isinstance(energy, dict) else None


@contextlib.contextmanager
def energy_link(request: RunRequest) -> Iterator[tuple[BoardLink, Monitor]]:
    """The started monitor (the board powered) and a handshaken link through the IO manager;
    both closed on the way out, whatever happened."""
    setup = energy_setup(request) or {}
    fields = SerialOptions.model_fields
    opts = SerialOptions.model_validate({k: v for k, v in request.options.items()
                                         if k in fields})
    with open_monitor(setup["monitor"]) as monitor:
        monitor.start()
        time.sleep(float(setup.get("boot_s", 1.0)))
        link = IOManagerLink(opts, int(setup.get("dut_baud", DUT_BAUD)))
        try:
            link.handshake()
            yield link, monitor
        finally:
            link.close()


def _run_window(link: BoardLink, monitor: Monitor, n: int, warmup: int,
                timeout: float) -> tuple[WindowEnergy, Trace]:
    monitor.mark()
    link.infer_lines(n, warmup, timeout)
    trace = monitor.collect()
    return window_energy(trace, n), trace


def energy_windows(link: BoardLink, monitor: Monitor, inputs: list[list[np.ndarray]],
                   warmup: int, windows: int, min_window_s: float, min_inferences: int
                   ) -> tuple[list[WindowEnergy], list[Trace], list[str]]:
    """``windows`` windows, one input each, N raised until a window lasts ``min_window_s`` on
    the monitor's clock: each window's energy, its trace, and when it ran (UTC)."""
    timeout_s, warmup = link.opts.timeout_s, max(warmup, 0)
    n = max(min_inferences, 1)
    link.load(inputs[0][0].tobytes())
    per_inf_s = None
    for _ in range(_CALIBRATION_ROUNDS):
        timeout = timeout_s + (3 * (n + warmup) * per_inf_s if per_inf_s
                               else max(3 * min_window_s, timeout_s))
        w, _ = _run_window(link, monitor, n, warmup, timeout)
        per_inf_s = w.duration_s / n
        if w.duration_s >= min_window_s:
            break
        n = math.ceil(n * min(min_window_s / max(w.duration_s, 1e-9) * 1.05, 100.0))
    else:
        raise link.fail(f"a window of {n} inferences still lasts under {min_window_s} s on "
                        "the monitor's clock")
    log.info("%s: %d inferences per energy window", link.port, n)
    results: list[WindowEnergy] = []
    traces: list[Trace] = []
    when: list[str] = []
    for i in range(windows):
        link.load(inputs[i % len(inputs)][0].tobytes())
        when.append(dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        timeout = timeout_s + 3 * (n + warmup) * (per_inf_s or 1.0) + 2.0
        w, trace = _run_window(link, monitor, n, warmup, timeout)
        results.append(w)
        traces.append(trace)
        log.info("%s: energy window %d: %.3f µJ/inference over %.3f s (%d edges)", link.port, i,
                 w.energy_uj_per_inference, w.duration_s, w.edges)
    return results, traces, when


class EnergyTimed(Timed):
    """Energy-mode figures: the metrics (window spans as the latency samples), the record's
    ``details`` and the raw ``trace`` (:func:`bench.runners.phase.run_phase` passes both on)."""

    details: dict[str, Any]
    trace: dict[str, Any]


def energy_figures(windows: list[WindowEnergy], traces: list[Trace], when: list[str],
                   monitor: Monitor, kind: str) -> EnergyTimed:
    """The metrics (with the raw window spans as latency samples), ``details`` and ``trace``."""
    method: Any = monitor.method
    best = median_window(windows)
    timed = latency_stats([w.duration_s * 1e9 / w.inferences for w in windows], method)
    out = EnergyTimed(timed)
    out.samples_ns = timed.samples_ns
    out["energy_uj"] = metric("energy_uj", best.energy_uj_per_inference, method)
    out["power_mw"] = metric("power_mw", best.power_mw, method)
    out.details = {"energy": {
        "monitor": kind, "method": method, "port": monitor.port,
        "voltage_v": traces[0].voltage_v, "rate_hz": traces[0].rate_hz,
        "inferences": best.inferences,
        "dropped_share": max(w.dropped_share for w in windows),
        "windows": [{"at": at, "energy_uj": w.energy_uj_per_inference,
                     "power_mw": w.power_mw, "duration_s": w.duration_s,
                     "edges_s": [w.start / t.rate_hz, w.stop / t.rate_hz], "edges": w.edges,
                     "dropped_share": w.dropped_share}
                    for w, t, at in zip(windows, traces, when, strict=True)]}}
    out.trace = traces_to_json(traces, windows, kind, method)
    return out


def measure(request: RunRequest, spec: Any, output_elements: int) -> EnergyTimed:
    """Energy mode's windows on the board of ``request`` (see the module's docstring)."""
    setup = energy_setup(request) or {}
    with energy_link(request) as (link, monitor):
        link.expect_outputs(output_elements)
        opts = link.opts
        inputs = sample_inputs(request.dataset, [spec], opts.windows, request.seed)
        windows, traces, when = energy_windows(link, monitor, inputs, request.warmup,
                                               opts.windows, opts.min_window_s,
                                               opts.min_inferences)
        return energy_figures(windows, traces, when, monitor,
                              str(setup["monitor"].get("kind")))
