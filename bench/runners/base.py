"""The runner contract.

A runner works in two phases, each called in an isolated worker subprocess:

* ``evaluate``: deterministic figures (task metrics, arena use, output agreement). The session
  caches them by artifact, data set and runtime versions, so a warm run does not redo them.
* ``measure``: timed figures (latency), measured afresh every run.

``unsupported`` runs in the parent and is cheap: it returns the reason a cell is *skipped*
before any work when the artifact tells (e.g. float16 weights in TFLite Micro), or None. What
only the runtime can tell (it refuses the model at prepare time, the firmware does not link)
is raised in a phase as :class:`bench.errors.Unsupported`: the cell is skipped all the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from bench.errors import Strict, Unsupported
from bench.results.metrics import Metric


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


class RunnerSkip(Unsupported):
    """Raised inside a phase when the runtime cannot execute this artifact (cell → skipped);
    any :class:`bench.errors.Unsupported` (e.g. a firmware that does not fit) does the same."""


class NoOptions(Strict):
    """A connection kind without options beyond ``kind``."""




@dataclass(frozen=True)
class Runner:
    """A registered runner: it serves one connection ``kind`` of device files for the artifact
    kinds in ``artifacts``. ``evaluate`` and ``measure`` are ``"module:function"`` references
    called in a worker as ``fn(request: RunRequest) -> dict[str, Metric]``.

    Several runners may serve one kind when they take different artifacts (``litert`` and
    ``native`` both serve ``host``); a device file's connection options are then checked
    against each runner's ``options`` model, and each runner reads its own fields.
    """

    name: str
    evaluate: str
    measure: str
    #: the device-file ``connection.kind`` this runner serves (default: its name)
    kind: str = ""
    #: artifact kinds it runs: ``tflite`` (a .tflite file) or ``c`` (generated C)
    artifacts: tuple[str, ...] = ("tflite",)
    #: pydantic model of its connection options, with their defaults
    options: type[BaseModel] = NoOptions
    #: which devices it serves: ``host`` (``core: host``), ``board`` (any other core), ``any``
    targets: Literal["host", "board", "any"] = "any"
    #: how its latency figures are obtained (a :data:`bench.results.metrics.Method`)
    method: str = "measured"
    #: its measure phase times code on this host: it runs in ``settings.processes`` separate
    #: worker processes and their raw samples are pooled
    host_timing: bool = False
    #: suite ``settings`` fields that fill the same-named option when the device file lacks it
    suite_settings: tuple[str, ...] = ()
    #: ``"module:function"`` opening an artifact for streaming replay
    #: (``fn(data: bytes, options: dict, source: str) -> OpenedModel``, the base of
    #: :mod:`bench.runners.io`), or None
    open_model: str | None = None
    #: ``"module:function"`` run in a new worker after a phase's worker died of a signal
    #: (``fn(request: RunRequest) -> str | None``): it reruns the model step by step, leaving
    #: a breadcrumb (:mod:`bench.breadcrumb`) before each, so the crash, if it recurs, names the
    #: op it happened in; or None
    locate_crash: str | None = None
    unsupported: Callable[[bytes, dict[str, Any]], str | None] = lambda tflite, options: None
    versions: Callable[[], dict[str, str]] = dict  # runtime versions, part of the cache key
    #: Whether a device's ``evaluate`` results may be cached (by artifact, data set, versions
    #: and options): not for a board whose firmware the options do not identify.
    cache_evaluate: Callable[[dict[str, Any]], bool] = lambda options: True
    #: The resource a device's cells hold one at a time (a serial port), or None: cells that
    #: share one are never run in parallel (pytest-xdist deals them to one worker).
    exclusive: Callable[[dict[str, Any]], str | None] = lambda options: None
    #: What a record's ``details`` gain from this runner (``fn(device, options) -> dict``),
    #: e.g. which calibration an estimate used.
    provenance: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] = (
        lambda device, options: {})
    description: str = ""

    @property
    def connection_kind(self) -> str:
        return self.kind or self.name

    def option_names(self) -> list[str]:
        return list(self.options.model_fields)

    def parse_options(self, options: dict[str, Any]) -> BaseModel:
        """This runner's options (defaults filled in) from a connection's options."""
        fields = self.options.model_fields
        return self.options.model_validate({k: v for k, v in options.items() if k in fields})

    def request_options(self, device_options: dict[str, Any], settings: Any) -> dict[str, Any]:
        """The options a run request carries: the device's, plus the suite settings this
        runner takes where the device file does not set them."""
        taken = {name: getattr(settings, name) for name in self.suite_settings
                 if getattr(settings, name, None) is not None}
        return {**taken, **device_options}


MetricMap = dict[str, Metric]
