"""The runner contract.

A runner works in two phases, each called in an isolated worker subprocess:

* ``evaluate``: deterministic figures (task metrics, arena use, output agreement). The session
  caches them by artifact, data set and runtime versions, so a warm run does not redo them.
* ``measure``: timed figures (latency), measured afresh every run.

``unsupported`` runs in the parent and is cheap: it returns the reason a cell is *skipped*
(e.g. float16 weights in TFLite Micro), or None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.metrics import Metric


@dataclass(frozen=True)
class RunRequest:
    """Everything a runner needs; plain data so it crosses the process boundary as JSON."""

    artifact: Path
    dataset: Path | None  # a saved bench.datasets.base.Dataset (.npz) or None: generated inputs
    options: dict[str, Any] = field(default_factory=dict)  # the device's connection options
    device: dict[str, Any] = field(default_factory=dict)  # the whole device file, as data
    warmup: int = 10
    repeats: int = 200
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"artifact": str(self.artifact),
                "dataset": None if self.dataset is None else str(self.dataset),
                "options": self.options, "device": self.device, "warmup": self.warmup,
                "repeats": self.repeats, "seed": self.seed}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRequest:
        return cls(artifact=Path(data["artifact"]),
                   dataset=None if data["dataset"] is None else Path(data["dataset"]),
                   options=data["options"], device=data.get("device", {}),
                   warmup=data["warmup"], repeats=data["repeats"], seed=data["seed"])


class RunnerSkip(Exception):
    """Raised inside a phase when the runtime cannot execute this artifact (cell → skipped)."""


@dataclass(frozen=True)
class Runner:
    """A registered runner. ``evaluate`` and ``measure`` are ``"module:function"`` references
    called in a worker as ``fn(request: RunRequest) -> dict[str, Metric]``."""

    name: str
    evaluate: str
    measure: str
    unsupported: Callable[[bytes, dict[str, Any]], str | None] = lambda tflite, options: None
    versions: Callable[[], dict[str, str]] = dict  # runtime versions, part of the cache key
    #: Whether a device's ``evaluate`` results may be cached (by artifact, data set, versions
    #: and options): not for a board whose firmware the options do not identify.
    cache_evaluate: Callable[[dict[str, Any]], bool] = lambda options: True
    description: str = ""


MetricMap = dict[str, Metric]
