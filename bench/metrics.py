"""Metric names, units and how each figure was obtained; task metrics from predictions."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Method = Literal["measured", "tflm", "board", "estimated", "build"]

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
}

#: Task metrics per task, and whether larger is better.
TASK_METRICS: dict[str, dict[str, bool]] = {
    "classification": {"accuracy": True, "f1_macro": True},
    "regression": {"mae": False, "rmse": False},
    "anomaly": {"auc": True, "precision": True, "recall": True, "f1": True},
}


@dataclass(frozen=True)
class Metric:
    """One figure: its value, unit and how it was obtained."""

    value: float
    unit: str
    method: Method

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Metric:
        return cls(value=data["value"], unit=data["unit"], method=data["method"])


def metric(name: str, value: float, method: Method, unit: str | None = None) -> Metric:
    """A :class:`Metric` with the unit registered for ``name`` unless one is given."""
    return Metric(float(value), UNITS.get(name, "") if unit is None else unit, method)
