"""Metric names, units and how each figure was obtained; task metrics from predictions."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from bench.results import formatting

if TYPE_CHECKING:
    from bench.datasets.base import Dataset

log = logging.getLogger(__name__)

Method = Literal["measured", "tflm", "board", "estimated", "build", "emulated"]

#: Every metric a record may hold, with its unit ("" for dimensionless figures).
UNITS: dict[str, str] = {
    "model_size": "B",
    "model_size_gzip": "B",
    "params": "",
    "arena_used": "B",
    "arena_min": "B",
    "latency_p50": "ms",
    "latency_p90": "ms",
    "latency_p99": "ms",
    "latency_mean": "ms",
    "latency_std": "ms",
    "latency_n": "",
    "accuracy": "",
    "f1_macro": "",
    "mae": "°C",
    "rmse": "°C",
    "auc": "",
    "precision": "",
    "recall": "",
    "f1": "",
    "threshold": "",
    "output_max_diff": "",
    "sparsity": "",
    "energy_uj": "µJ",
    "avg_power_mw": "mW",
    "battery_days": "d",
    "power_mw": "mW",  # mean power over an energy-mode window (a power monitor's)
    # streaming replay (host runner option ``stream_period_s``): the test split window by window
    "stream_latency_p99": "ms",
    "stream_rtf": "",  # real-time factor: p99 invoke latency / sample period
    "stream_max_rate_hz": "Hz",  # highest sustainable reading rate: 1 / p99
    "stream_deadline_misses": "",
    "stream_alerts": "",
    "stream_events": "",
    "stream_events_detected": "",
    # emulated boards (the ``qemu`` runner): the firmware under QEMU
    "instructions": "",  # per inference, counted by the firmware's timer under -icount
    "firmware_flash": "B",  # text + rodata + data of the whole firmware
    "firmware_ram": "B",  # data + bss (arena included) + stack and heap reservations
}

#: Task metrics per task, and whether larger is better.
TASK_METRICS: dict[str, dict[str, bool]] = {
    "classification": {"accuracy": True, "f1_macro": True},
    "regression": {"mae": False, "rmse": False},
    "anomaly": {"auc": True, "precision": True, "recall": True, "f1": True},
}

#: Whether a larger value of each metric in :data:`UNITS` is better; None for figures that
#: describe rather than rank (a threshold, a sample count, the alerts a replay raised).
HIGHER_IS_BETTER: dict[str, bool | None] = {
    "model_size": False, "model_size_gzip": False, "params": False,
    "arena_used": False, "arena_min": False,
    "latency_p50": False, "latency_p90": False, "latency_p99": False, "latency_mean": False,
    "latency_std": False, "latency_n": None,
    **{name: better for task in TASK_METRICS.values() for name, better in task.items()},
    "threshold": None, "output_max_diff": False, "sparsity": None,
    "energy_uj": False, "avg_power_mw": False, "battery_days": True, "power_mw": False,
    "stream_latency_p99": False, "stream_rtf": False, "stream_max_rate_hz": True,
    "stream_deadline_misses": False, "stream_alerts": None, "stream_events": None,
    "stream_events_detected": True,
    "instructions": False, "firmware_flash": False, "firmware_ram": False,
}

#: The suffix of a task metric's difference against the suite's reference variant.
DELTA_SUFFIX = "_delta"


def higher_is_better(name: str) -> bool | None:
    """Direction of a metric (a ``<metric>_delta`` follows its metric); None when it has none
    or is unknown."""
    return HIGHER_IS_BETTER.get(name.removesuffix(DELTA_SUFFIX))


def is_task_metric(name: str) -> bool:
    """Whether ``name`` measures how well a model does its task (accuracy, MAE, AUC, …)."""
    return any(name in task for task in TASK_METRICS.values())


@dataclass(frozen=True)
class Metric:
    """One figure: its value, unit and how it was obtained; an estimate also carries the
    bounds of its 80 % interval (``low``, ``high``; stored only when present)."""

    value: float
    unit: str
    method: Method
    low: float | None = None
    high: float | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.low is None and self.high is None:
            del data["low"], data["high"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Metric:
        return cls(value=data["value"], unit=data["unit"], method=data["method"],
                   low=data.get("low"), high=data.get("high"))

    def text(self, scale: float = 1.0, unit: str | None = None) -> str:
        """``82.0 ms (68.3–110)``: the value with 3 significant digits, then the interval (a
        duration in the unit that suits it: ``812 ns``; :mod:`bench.results.formatting`)."""
        unit = self.unit if unit is None else unit
        value = self.value * scale
        if self.low is None or self.high is None:
            if unit in formatting.NS_PER:
                return formatting.duration(value, unit)
            return f"{formatting.significant(value, 3, trim=False)} {unit}".strip()
        return formatting.with_interval(value, self.low * scale, self.high * scale, unit)


def metric(name: str, value: float, method: Method, unit: str | None = None,
           interval: tuple[float, float] | None = None) -> Metric:
    """A :class:`Metric` with the unit registered for ``name`` unless one is given, and the
    bounds of its 80 % interval when it has one."""
    low, high = (None, None) if interval is None else (float(interval[0]), float(interval[1]))
    return Metric(float(value), UNITS.get(name, "") if unit is None else unit, method, low, high)


# --- task metrics -------------------------------------------------------------------------------

def threshold_max_f1(labels: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold (``score >= t`` is anomalous) maximising F1; ties → the smallest."""
    from sklearn.metrics import precision_recall_curve

    if not labels.any():
        log.warning("validation split has no anomalous window: F1 is undefined, the threshold "
                     "falls back to the largest validation score")
        return float(scores.max())
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    best = f1 == f1.max()
    return float(thresholds[best].min())  # thresholds ascend; take the smallest tie


def reconstruction_scores(x: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Per-window mean squared error between an autoencoder's ``output`` and its input ``x``."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    out = np.asarray(output, dtype=np.float64).reshape(len(x), -1)
    if out.shape != x.shape:
        raise ValueError(f"autoencoder output has {out.shape[1]} values per window, "
                         f"its input {x.shape[1]}")
    return ((out - x) ** 2).mean(axis=1)


def task_metrics(dataset: Dataset, predict: Callable[[np.ndarray], np.ndarray],
                 method: Method) -> dict[str, Metric]:
    """Task metrics of ``predict`` on the **test** split of ``dataset``.

    ``predict`` maps float32 inputs ``(n, ...)`` in the data set's float domain to float
    (dequantized) outputs ``(n, ...)``.

    * classification: ``accuracy``, ``f1_macro`` (argmax of the outputs; a single output column
      is a sigmoid probability, positive at ≥ 0.5).
    * regression: ``mae``, ``rmse`` over all target values.
    * anomaly: the score of a window is the mean squared error between the output and the input.
      The ``threshold`` is chosen on the **validation** split (``predict`` runs on it too): the
      score value maximising F1 when windows scoring ``>= threshold`` are called anomalous; ties
      go to the smallest such value (no anomalous validation window → its largest score). On
      test: ``auc`` (ROC AUC of the raw scores), ``precision``, ``recall``, ``f1`` at that
      threshold, and ``threshold`` itself.
    """
    from sklearn import metrics as skm

    x, y = dataset.split("test")
    if len(x) == 0:
        raise ValueError("the test split is empty: no task metrics")
    out = np.asarray(predict(x.astype(np.float32, copy=False)))
    if len(out) != len(x):
        raise ValueError(f"predict returned {len(out)} outputs for {len(x)} test inputs")

    if dataset.task == "classification":
        out2 = out.reshape(len(out), -1)
        pred = (out2[:, 0] >= 0.5).astype(int) if out2.shape[1] == 1 else out2.argmax(axis=1)
        y_true = np.asarray(y).reshape(-1).astype(int)
        return {"accuracy": metric("accuracy", skm.accuracy_score(y_true, pred), method),
                "f1_macro": metric("f1_macro", skm.f1_score(y_true, pred, average="macro",
                                                            zero_division=0), method)}
    if dataset.task == "regression":
        y_true = np.asarray(y, dtype=np.float64).reshape(-1)
        y_pred = np.asarray(out, dtype=np.float64).reshape(-1)
        if y_pred.shape != y_true.shape:
            raise ValueError(f"regression output has {y_pred.size} values for {y_true.size} "
                             "targets")
        mse = skm.mean_squared_error(y_true, y_pred)
        return {"mae": metric("mae", skm.mean_absolute_error(y_true, y_pred), method),
                "rmse": metric("rmse", np.sqrt(mse), method)}
    if dataset.task == "anomaly":
        x_val, y_val = dataset.split("validation")
        val_scores = reconstruction_scores(x_val, predict(x_val.astype(np.float32, copy=False)))
        threshold = threshold_max_f1(np.asarray(y_val).reshape(-1).astype(int), val_scores)
        scores = reconstruction_scores(x, out)
        y_true = np.asarray(y).reshape(-1).astype(int)
        pred = (scores >= threshold).astype(int)
        if len(np.unique(y_true)) < 2:
            log.warning("test split has a single class: ROC AUC is undefined (NaN)")
            auc = float("nan")
        else:
            auc = skm.roc_auc_score(y_true, scores)
        return {
            "auc": metric("auc", auc, method),
            "precision": metric("precision", skm.precision_score(y_true, pred, zero_division=0),
                                method),
            "recall": metric("recall", skm.recall_score(y_true, pred, zero_division=0), method),
            "f1": metric("f1", skm.f1_score(y_true, pred, zero_division=0), method),
            "threshold": metric("threshold", threshold, method),
        }
    raise ValueError(f"unknown task {dataset.task!r}; expected classification, regression or "
                     "anomaly")
