"""Streaming replay of a run's cell: find its artifact and data set, replay it, plot it.

The replay itself is :func:`bench.runners.replay.replay`. :func:`locate` finds a cell's artifact
and data set from a run; :func:`replay_files` (a :mod:`bench.worker` target) replays one and
writes the PNG plot."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench import registry
from bench.artifacts.export import find_artifact
from bench.artifacts.tflite_info import inspect
from bench.datasets.base import Dataset
from bench.errors import hint
from bench.results.formatting import duration
from bench.run.build import dataset_key, ensure_dataset
from bench.runners.replay import StreamResult, flag_runs, replay
from bench.suite.spec import DatasetRef

if TYPE_CHECKING:
    from bench.artifacts.cache import Cache
    from bench.results.record import Record
    from bench.results.store import Run, Store
    from bench.suite.spec import Suite

log = logging.getLogger(__name__)

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
        for k, (a, b) in enumerate(flag_runs(labels)):
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
                   label=f"p99 {duration(s['latency_ms']['p99'])}; period {result.period_s:g} s; "
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
