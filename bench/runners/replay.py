"""Streaming replay: a data set's test windows through an opened model, one at a time.

:func:`replay` feeds the test split in order through a runner's :class:`OpenedModel` (LiteRT or
TFLite Micro), one window per ``invoke()`` (inputs quantized, outputs dequantized), timing each
invoke alone, as a device would that infers once per new reading. The replay runs as fast as it
can; each latency is compared with the sample period instead (real-time factor = latency /
period; highest sustainable rate = 1 / p99). Anomaly windows are scored (reconstruction MSE) and
alerted at the threshold the record's rule picks on the validation split
(:mod:`bench.results.metrics`); regression reports MAE over the stream, classification
accuracy. Finding a run's cell and plotting are :mod:`bench.run.stream`'s.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.results.formatting import duration
from bench.results.metrics import reconstruction_scores, threshold_max_f1
from bench.runners.io import (
    OpenedModel,
    as_batch1,
    batch_predict,
    dequantize,
    latency_stats,
    quantize,
)

if TYPE_CHECKING:
    from bench.datasets.base import Dataset

log = logging.getLogger(__name__)

#: Default sample period: one reading a minute.
DEFAULT_PERIOD_S = 60.0
#: Untimed invokes on the first window before the stream starts.
WARMUP = 10


@dataclass
class StreamResult:
    """One replay: per-window invoke latency and outputs, and the task's verdicts."""

    task: str
    period_s: float
    latencies_ns: np.ndarray  # (n,) int64, one invoke per window
    outputs: np.ndarray  # (n, k) float32, dequantized
    labels: np.ndarray  # (n,) the test split's targets (anomaly: 0/1 per window)
    scores: np.ndarray | None = None  # anomaly: reconstruction MSE per window
    threshold: float | None = None  # anomaly: validation-split rule
    stride: int = 1  # readings between consecutive windows
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def alerts(self) -> np.ndarray | None:
        """Anomaly: windows scoring at or above the threshold."""
        if self.scores is None or self.threshold is None:
            return None
        return self.scores >= self.threshold

    @property
    def latency_ms(self) -> dict[str, float]:
        """``p50``, ``p90``, ``p99``, ``mean``, ``std``, ``max`` (ms) and ``n``."""
        stats = latency_stats(self.latencies_ns.tolist(), "measured")
        out = {name.removeprefix("latency_"): m.value for name, m in stats.items()}
        out["n"] = int(out["n"])
        out["max"] = float(self.latencies_ns.max()) / 1e6
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-able figures: latency, real-time factor, sustainable rate, task verdicts."""
        lat = self.latency_ms
        period_ms = self.period_s * 1e3
        return {
            "task": self.task,
            "windows": len(self.latencies_ns),
            "period_s": self.period_s,
            "window_stride": self.stride,
            "latency_ms": lat,
            "timing": "each invoke() alone, one window per invoke, LiteRT on this host",
            "real_time_factor": lat["p99"] / period_ms,
            "real_time_factor_p50": lat["p50"] / period_ms,
            "real_time_factor_max": lat["max"] / period_ms,
            "max_rate_hz": 1e3 / lat["p99"] if lat["p99"] > 0 else float("inf"),
            "deadline_misses": int((self.latencies_ns / 1e6 > period_ms).sum()),
            "metrics": dict(self.metrics),
        }


def flag_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``(first, last)`` indices of each run of consecutive true flags."""
    padded = np.concatenate([[False], flags.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _anomaly_metrics(labels: np.ndarray, alerts: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as skm

    y = labels.astype(int)
    events = flag_runs(y.astype(bool))  # overlapping spikes' windows merge into one event
    detected = sum(bool(alerts[a:b + 1].any()) for a, b in events)
    return {
        "precision": float(skm.precision_score(y, alerts, zero_division=0)),
        "recall": float(skm.recall_score(y, alerts, zero_division=0)),
        "f1": float(skm.f1_score(y, alerts, zero_division=0)),
        "alerts": int(alerts.sum()),
        "true_alerts": int((alerts & (y == 1)).sum()),
        "false_alerts": int((alerts & (y == 0)).sum()),
        "anomalous_windows": int(y.sum()),
        "events": len(events),
        "events_detected": int(detected),
    }


def replay(model: OpenedModel, dataset: Dataset, period_s: float = DEFAULT_PERIOD_S, *,
           reset: bool = False, warmup: int = WARMUP) -> StreamResult:
    """Replay the test split of ``dataset`` through an opened ``model`` window by window.

    ``period_s`` is the time between readings (one window per reading at stride 1);
    ``reset`` clears the model's state before each window (stateful models: LSTMs).
    """
    if not period_s > 0:
        raise ValueError(f"the sample period must be positive (got {period_s})")
    x, y = dataset.split("test")
    if len(x) == 0:
        raise ValueError("the test split is empty: nothing to replay")
    if len(model.in_specs) != 1:
        raise ValueError(f"a data set feeds one model input; this model has "
                         f"{len(model.in_specs)}")
    in_spec, out_spec = model.in_specs[0], model.out_specs[0]

    model.set_inputs([as_batch1(quantize(x[0], in_spec), in_spec)])
    for _ in range(warmup):
        model.invoke()
    clock = time.perf_counter_ns
    latencies = np.zeros(len(x), dtype=np.int64)
    outputs = []
    gc_enabled = gc.isenabled()
    gc.disable()
    try:
        for i, window in enumerate(x):
            if reset:  # windows are independent: no LSTM state carried over
                model.reset()
            model.set_inputs([as_batch1(quantize(window, in_spec), in_spec)])
            t0 = clock()
            model.invoke()
            latencies[i] = clock() - t0
            outputs.append(dequantize(model.get_outputs()[0], out_spec).reshape(-1))
    finally:
        if gc_enabled:
            gc.enable()
    out = np.stack(outputs)
    labels = np.asarray(y)
    result = StreamResult(task=dataset.task, period_s=float(period_s), latencies_ns=latencies,
                          outputs=out, labels=labels,
                          stride=int(dataset.info.get("window_stride", 1)))
    if dataset.task == "anomaly":
        # the threshold exactly as bench.results.metrics.task_metrics picks it: validation windows
        # through the same model, the score maximising F1
        predict = batch_predict(lambda q: model.run([q], reset)[0], in_spec, out_spec)
        x_val, y_val = dataset.split("validation")
        val_scores = reconstruction_scores(x_val, predict(x_val.astype(np.float32, copy=False)))
        result.threshold = threshold_max_f1(np.asarray(y_val).reshape(-1).astype(int),
                                             val_scores)
        result.scores = reconstruction_scores(x, out)
        labels01 = labels.reshape(-1).astype(int)
        result.metrics = {"threshold": result.threshold,
                          **_anomaly_metrics(labels01, result.alerts)}
    elif dataset.task == "regression":
        target = labels.astype(np.float64).reshape(-1)
        pred = out.astype(np.float64).reshape(-1)
        if pred.shape != target.shape:
            raise ValueError(f"regression output has {pred.size} values for {target.size} "
                             "targets")
        result.metrics = {"mae": float(np.abs(pred - target).mean())}
    elif dataset.task == "classification":
        pred_cls = (out[:, 0] >= 0.5).astype(int) if out.shape[1] == 1 else out.argmax(axis=1)
        result.metrics = {"accuracy": float((pred_cls == labels.reshape(-1)).mean())}
    else:
        raise ValueError(f"unknown task {dataset.task!r}")
    log.info("replayed %d windows: p99 %s", len(x), duration(result.latency_ms["p99"]))
    return result


# --- plot --------------------------------------------------------------------------------------

