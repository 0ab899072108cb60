"""Streaming replay: a data set's test windows through a deployed artifact, one at a time.

:func:`replay` feeds the test split in order through LiteRT, one window per ``invoke()`` (inputs
quantized, outputs dequantized), timing each invoke alone, as a device would that infers once
per new reading. The replay runs as fast as it can; each latency is compared with the sample
period instead (real-time factor = latency / period; highest sustainable rate = 1 / p99).
Anomaly windows are scored (reconstruction MSE) and alerted at the threshold the record's rule
picks on the validation split (:mod:`bench.results.metrics`); regression reports MAE over the
stream, classification accuracy. :func:`locate` finds a cell's artifact and data set from a run;
:func:`replay_files` (a :mod:`bench.run.worker` target) replays one and writes the PNG plot.
"""

from __future__ import annotations

import gc
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from bench import registry
from bench.errors import hint
from bench.results.metrics import reconstruction_scores, threshold_max_f1
from bench.runners.io import IOSpec, as_batch1, batch_predict, dequantize, latency_stats, quantize

if TYPE_CHECKING:
    from bench.artifacts.cache import Cache
    from bench.datasets.base import Dataset
    from bench.results.record import Record
    from bench.results.store import Run, Store
    from bench.suite.spec import Suite

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


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``(first, last)`` indices of each run of consecutive true flags."""
    padded = np.concatenate([[False], flags.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _anomaly_metrics(labels: np.ndarray, alerts: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as skm

    y = labels.astype(int)
    events = _runs(y.astype(bool))  # overlapping spikes' windows merge into one event
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


class OpenedModel(Protocol):
    """What a replay needs of an opened model: LiteRT's and TFLite Micro's both satisfy it."""

    in_specs: list[IOSpec]
    out_specs: list[IOSpec]

    def set_inputs(self, raw: list[np.ndarray]) -> None: ...
    def invoke(self) -> None: ...
    def get_outputs(self) -> list[np.ndarray]: ...
    def reset(self) -> None: ...
    def run(self, raw: list[np.ndarray], reset: bool = False) -> list[np.ndarray]: ...


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
    log.info("replayed %d windows: p99 %.4f ms", len(x), result.latency_ms["p99"])
    return result


# --- plot --------------------------------------------------------------------------------------

def _time_axis(n: int, seconds_per_window: float) -> tuple[np.ndarray, str]:
    total = n * seconds_per_window
    for unit, s in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if total >= 3 * s:
            return np.arange(n) * seconds_per_window / s, unit
    return np.arange(n) * seconds_per_window, "s"


def plot(result: StreamResult, path: Path, title: str) -> Path:
    """Write a PNG (Agg): the task panel over stream time and the per-window latency below."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    n = len(result.latencies_ns)
    t, unit = _time_axis(n, result.period_s * result.stride)
    dt = t[1] - t[0] if n > 1 else 1.0
    fig = Figure(figsize=(12, 6.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax, ax_lat = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    m = result.metrics
    if result.task == "anomaly" and result.scores is not None:
        labels = result.labels.reshape(-1).astype(bool)
        alerts = result.alerts
        for k, (a, b) in enumerate(_runs(labels)):
            ax.axvspan(t[a] - dt / 2, t[b] + dt / 2, color="tab:orange", alpha=0.3, lw=0,
                       label="injected anomaly" if k == 0 else None)
        ax.plot(t, result.scores, lw=0.6, color="tab:blue", label="score (reconstruction MSE)")
        ax.axhline(result.threshold, color="tab:red", ls="--", lw=1,
                   label=f"threshold {result.threshold:.4g}")
        hit, false = alerts & labels, alerts & ~labels
        ax.scatter(t[hit], result.scores[hit], s=14, color="tab:red", zorder=3,
                   label=f"alert, true ({hit.sum()})")
        ax.scatter(t[false], result.scores[false], s=18, marker="x", color="black", zorder=3,
                   label=f"alert, false ({false.sum()})")
        if result.scores.min() > 0:
            ax.set_yscale("log")
        ax.set_ylabel("anomaly score")
        verdict = (f"precision {m['precision']:.3f}, recall {m['recall']:.3f}, "
                   f"F1 {m['f1']:.3f}; events {m['events_detected']}/{m['events']}")
    elif result.task == "regression":
        ax.plot(t, result.labels.reshape(n, -1)[:, 0], lw=0.8, color="black", label="target")
        ax.plot(t, result.outputs[:, 0], lw=0.8, color="tab:blue", label="prediction")
        ax.set_ylabel("value")
        verdict = f"MAE {m['mae']:.4g}"
    else:
        out = result.outputs
        pred = (out[:, 0] >= 0.5).astype(int) if out.shape[1] == 1 else out.argmax(axis=1)
        true = result.labels.reshape(-1)
        ax.step(t, true, where="mid", lw=0.8, color="black", label="true class")
        wrong = pred != true
        ax.scatter(t[wrong], pred[wrong], s=14, marker="x", color="tab:red",
                   label=f"wrong prediction ({wrong.sum()})")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("class")
        verdict = f"accuracy {m['accuracy']:.3f}"
    ax.legend(loc="upper right", fontsize="small")
    ax.set_title(f"{title}\n{verdict}", fontsize="medium")
    lat_ms = result.latencies_ns / 1e6
    s = result.summary()
    ax_lat.plot(t, lat_ms, lw=0.5, color="tab:gray")
    ax_lat.axhline(s["latency_ms"]["p99"], color="tab:purple", ls="--", lw=1,
                   label=f"p99 {s['latency_ms']['p99']:.4g} ms; period {result.period_s:g} s; "
                         f"real-time factor {s['real_time_factor']:.2e}")
    ax_lat.set_ylabel("invoke ms")
    ax_lat.set_xlabel(f"stream time ({unit})")
    ax_lat.legend(loc="upper right", fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def replay_files(artifact: str, dataset: str, period_s: float, png: str, title: str,
                 options: dict[str, Any] | None = None, runner: str = "litert"
                 ) -> dict[str, Any]:
    """Worker target: open the artifact with ``runner`` (one with an ``open_model``), replay
    the data set's test split, write the PNG, return the summary."""
    from bench.artifacts.tflite_info import inspect
    from bench.datasets.base import Dataset

    plugin = registry.runners.get(runner)
    if plugin.open_model is None:
        raise ValueError(f"the {runner!r} runner cannot open a model for a replay")
    data = Path(artifact).read_bytes()
    model = registry.load_ref(plugin.open_model)(data, options or {}, artifact)
    reset = inspect(data, artifact).has_variables
    result = replay(model, Dataset.load(Path(dataset)), period_s, reset=reset)
    plot(result, Path(png), title)
    return result.summary()


# --- finding a cell ----------------------------------------------------------------------------

@dataclass(frozen=True)
class CellSource:
    """What a replay of a run's cell needs: its record, artifact and cached data set."""

    run: Run
    record: Record
    artifact: Path
    dataset: Path


def safe_name(cell_id: str) -> str:
    """A file-name-safe form of a cell id (``har/int8@host`` → ``har_int8_host``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", cell_id).strip("_") or "cell"


def locate(suite: Suite, cell_id: str, store: Store, cache: Cache) -> CellSource:
    """The latest run of ``suite`` in ``store``, the ok record of ``cell_id`` in it, its artifact
    in ``cache`` (by SHA-256) and its data set (regenerated into the cache when missing).

    Raises :class:`LookupError` with the reason: no run, unknown or not-ok cell, missing artifact,
    no data set."""
    from bench.artifacts.build import dataset_key, ensure_dataset
    from bench.artifacts.export import find_artifact
    from bench.suite.spec import DatasetRef

    run = store.latest(suite.name)
    if run is None:
        raise LookupError(f"no runs of suite {suite.name!r} under {store.root}; run it first "
                          "with `edgebench run SUITE`")
    records = {r.cell_id: r for r in run.records()}
    record = records.get(cell_id)
    where = f"run {run.suite}/{run.run_id}"
    if record is None:
        raise LookupError(f"no cell {cell_id!r} in {where}{hint(cell_id, records)} (cells: "
                          f"{', '.join(records) or 'none'})")
    if record.status != "ok":
        reason = (record.error or {}).get("message", "no reason recorded")
        raise LookupError(f"cell {cell_id!r} is {record.status} in {where}: {reason}; only an "
                          "ok cell can be replayed")
    if not record.artifact_sha256:
        raise LookupError(f"cell {cell_id!r} in {where} has no artifact_sha256")
    artifact = find_artifact(record.artifact_sha256, cache)
    ref = (record.details or {}).get("dataset")
    if not ref:
        raise LookupError(f"cell {cell_id!r} has no data set: there is no stream to replay")
    entry = next((m for m in suite.models if m.id == record.model), None)
    if entry is None:
        raise LookupError(f"model {record.model!r} of cell {cell_id!r} is no longer in the "
                          f"suite file {suite.source}")
    dataset_ref = DatasetRef.model_validate(ref)
    if entry.dataset != dataset_ref:
        log.warning("the suite file's data set for %s differs from the run's; replaying the "
                    "run's (%s)", record.model, dataset_ref.name)
        entry = entry.model_copy(update={"dataset": dataset_ref})
    return CellSource(run, record, artifact, ensure_dataset(entry, dataset_key(entry), cache))
