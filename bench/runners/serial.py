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
throughput; then ``layers%``: a firmware built with profiling (edgebench's) gives each
operator's ticks of one invoke, stored as ``details["layers"]`` in ns (checked to sum to the
median inference within 1 %); a stock firmware's record says why it has none. ``evaluate``
(method ``board``): every test-split input with ``infer 1 0``, and, before them, the agreement
with LiteRT a board flashed with edgebench's firmware gives as the ``qemu`` runner's does
(``output_max_diff`` of its ``m-results-raw`` on a few inputs, ``details["agreement"]`` from
``tensor N%``, :mod:`bench.runners.board_agreement`); a stock firmware's record says why it has
none.

A device file with an ``energy:`` block is a board in MLPerf Tiny's energy mode: the connection's
port is the IO manager's, the monitor powers the board, and ``measure`` gives energy per
inference (:mod:`bench.runners.energy`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import statistics
import time
from collections.abc import Callable, Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from bench.artifacts.tflite_info import inspect
from bench.board.link import BoardError, BoardLink, SerialOptions, connect
from bench.datasets.base import Dataset
from bench.results.metrics import Metric, task_metrics
from bench.runners import energy
from bench.runners.base import MetricMap, Runner, RunRequest
from bench.runners.board_agreement import agreement_samples, output_agreement
from bench.runners.io import (
    Detailed,
    IOSpec,
    Timed,
    as_batch1,
    latency_stats,
    load_artifact,
    quantize,
    sample_inputs,
)
from bench.runners.layers import firmware_layers
from bench.runners.litert import LiteRTModel

log = logging.getLogger(__name__)

_CALIBRATION_ROUNDS = 8
HOW = ("the board's firmware (edgebench's) prints each operator's first output as the operator "
       "ends (`tensor N%`, TFLite Micro's profiler hook)")


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


class DetailedTimed(Timed):
    """Board latency with the per-layer profile the record's ``details`` gain."""

    details: dict[str, Any]


def measure(request: RunRequest) -> MetricMap:
    """Board latency from ``infer N W`` windows (method ``board``), as MLPerf Tiny scores it,
    and the per-layer profile of a firmware built with profiling (``layers%``; a stock
    firmware's record says why there is none); with an ``energy:`` block, energy mode
    (:mod:`bench.runners.energy`)."""
    spec = input_spec(request)
    if energy.energy_setup(request) is not None:
        return energy.measure(request, spec, output_elements(request))
    with connect(request.options) as link:
        link.expect_outputs(output_elements(request))
        opts = link.opts
        inputs = sample_inputs(request.dataset, [spec], opts.windows, request.seed)
        per_inf_ns = timed_windows(link, inputs, request.warmup, opts.windows,
                                   opts.min_window_s, opts.min_inferences)
        # p50 of the per-window latencies = 1000 / the median throughput (windows are few, odd)
        out = DetailedTimed(latency_stats(per_inf_ns, "board"))  # type: ignore[arg-type]
        out.samples_ns = per_inf_ns
        out.details = firmware_layers(link, load_artifact(request.artifact),
                                      statistics.median(per_inf_ns), "time_ns", "board",
                                      lambda hz: 1e9 / hz, "timed windows",
                                      request.artifact.name, opts.timeout_s)
    return out


@contextlib.contextmanager
def board_link(request: RunRequest) -> Iterator[BoardLink]:
    """The board's link: direct, or through the IO manager with the monitor powering it (a
    device file with an ``energy:`` block)."""
    if energy.energy_setup(request) is None:
        with connect(request.options) as link:
            yield link
    else:
        with energy.energy_link(request) as (link, _):
            yield link


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
    """Agreement with LiteRT (``output_max_diff`` and ``details["agreement"]``) of a board
    running edgebench's firmware, or why there is none, then task metrics from the board's
    ``m-results`` on every test input (method ``board``)."""
    spec = input_spec(request)
    out = Detailed()
    with board_link(request) as link:
        link.expect_outputs(output_elements(request))
        diff, out.details = agreement(request, link)
        if diff is not None:
            out["output_max_diff"] = diff
        if request.dataset is None:
            log.info("no data set: the serial runner has no task metrics to evaluate")
        else:
            out.update(task_metrics(Dataset.load(request.dataset), board_predict(link, spec),
                                    "board"))
    return out


def agreement(request: RunRequest, link: BoardLink) -> tuple[Metric | None, dict[str, Any]]:
    """``output_max_diff`` and ``{"agreement": …}`` from a firmware that prints its raw outputs
    and each operator's (edgebench's, :mod:`bench.runners.board_agreement`) on a few inputs
    (as many as the link moves in 20 s); a stock MLPerf Tiny firmware gives no difference and
    ``{"method": "board", "reason": …}`` quoting what it answered, and the cell goes on."""
    data = load_artifact(request.artifact)
    try:
        lite = LiteRTModel(data, {}, str(request.artifact))
    except (RuntimeError, ValueError) as exc:
        return None, {"agreement": {"method": "board", "reason": f"LiteRT cannot run the "
                                                                 f"artifact: {exc}"}}
    spec, char_s = lite.in_specs[0], link.wire_s(1)
    samples = agreement_samples(int(np.prod(spec.shape)) * spec.dtype.itemsize,
                                sum(int(np.prod(o.shape)) for o in lite.out_specs),
                                char_s, char_s)
    inputs = sample_inputs(request.dataset, [spec], samples, request.seed)
    try:
        diff, found = output_agreement(link, lite, data, inputs, "board",
                                       str(request.artifact), HOW, char_s)
    except BoardError as exc:
        return None, {"agreement": {"method": "board", "reason": exc.what}}
    return diff, {"agreement": found}


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
