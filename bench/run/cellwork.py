"""The work on one cell, wherever it runs: build (or fetch) its artifact, run its runner's phases
in worker subprocesses, and say what happened as an :class:`Outcome`.

The session turns outcomes into records (deltas, constraints, provenance) in one process; an
executor (:mod:`bench.run.executors.local`) decides where the work runs.
"""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench import worker
from bench.artifacts import tflite_info
from bench.artifacts.cache import Cache, key
from bench.devices.connections import all_runners, runner_for
from bench.devices.device import Device
from bench.devices.energy import energy_metrics
from bench.files import DiskFull
from bench.results import host
from bench.results.metrics import Metric, metric
from bench.results.samples import Samples
from bench.results.stability import instability
from bench.run.build import BuildPlan, framework_of
from bench.runners.base import RunRequest
from bench.runners.io import latency_stats
from bench.suite.matrix import Cell
from bench.suite.spec import Suite
from bench.variants.prune import tflite_sparsity

#: Times one cell in-process (``run_cells(measure=...)``): latency metrics, or None.
MeasureHook = Callable[[Cell, RunRequest], "dict[str, Metric] | None"]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def this_host() -> dict[str, str]:
    """The machine a cell ran on, for its record's provenance."""
    return {"node": platform.node(), "platform": platform.platform(),
            "machine": platform.machine(), "python": platform.python_version()}


def pooled(timings: list[list[float]], metrics: dict[str, Metric],
           details: dict[str, Any]) -> Samples | None:
    """The raw timings of every measuring process as :class:`Samples`; with several processes
    the latency figures become the pooled samples' and ``details["timing"]`` keeps each
    process's median; an unstable spread adds ``details["warnings"]``."""
    if not timings or "latency_p50" not in metrics:
        return None
    samples = Samples([np.asarray(t, np.float64) for t in timings], [len(t) for t in timings])
    method = metrics["latency_p50"].method
    if len(timings) > 1:
        metrics.update(latency_stats(samples.all.tolist(), method))
    details["timing"] = {"processes": len(timings),
                         "process_medians_ms": samples.process_medians_ms()}
    warnings = instability(samples)
    if warnings:
        details["warnings"] = [*details.get("warnings", []), *warnings]
    return samples


@dataclass(frozen=True)
class Artifact:
    """A built .tflite: its bytes, hash, build facts and size metrics (read once per build)."""

    path: Path
    data: bytes
    sha256: str
    facts: dict[str, Any]
    metrics: dict[str, Metric]
    kind: str = "tflite"  # or "c": a classical baseline's generated C


def reason(error: Exception) -> str:
    """A failure's message for its record, never empty (an exception without a message is
    named by its kind and type)."""
    text = str(error).strip()
    if text:
        return text
    cause = error.__cause__ or error.__context__
    kind = getattr(error, "kind", "error")
    return f"{kind}: {type(cause or error).__name__} (no message)"


class CellFailure(Exception):
    """A cell-level failure with the kind of error for the record."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Outcome:
    """What happened to one cell: its status, figures and details, before the session adds
    deltas and constraints. Plain data: it crosses process and machine boundaries."""

    cell: Cell
    status: str  # ok | failed | skipped
    started: str
    ended: str
    metrics: dict[str, Metric] = field(default_factory=dict)
    sha: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    error: dict[str, str] | None = None  # {"kind", "message"}
    host: dict[str, str] = field(default_factory=this_host)
    #: where and when each part of the work ran, when the executor says: ``{"phase", "node",
    #: "started", "ended"}`` (Unix seconds), in the record's provenance
    phases: list[dict[str, Any]] = field(default_factory=list)
    #: the raw timings behind the latency figures (stored beside the record), if any
    samples: Samples | None = None
    #: the measuring machine's state when it timed the cell (:func:`bench.results.host.state`)
    machine: dict[str, Any] | None = None
    #: an energy-mode cell's raw current trace (:func:`bench.monitors.base.traces_to_json`)
    trace: dict[str, Any] | None = None


@dataclass
class Evaluated:
    """A cell between its two phases: evaluated, not yet measured. Plain data, so an executor
    may measure it in another task (on the same machine: ``request`` names cached files)."""

    cell: Cell
    started: str
    connection_kind: str
    artifact_kind: str
    request: RunRequest
    metrics: dict[str, Metric]
    sha: str
    details: dict[str, Any]


@dataclass
class CellWork:
    """Builds artifacts and runs cells of one suite on its devices, using ``cache``."""

    suite: Suite
    devices: dict[str, Device]
    cache: Cache

    def outcome(self, cell: Cell, status: str, started: str, *,
                metrics: dict[str, Metric] | None = None, sha: str | None = None,
                details: dict[str, Any] | None = None,
                error: CellFailure | None = None) -> Outcome:
        return Outcome(cell=cell, status=status, started=started, ended=now(),
                       metrics=metrics or {}, sha=sha, details=details or {},
                       error=None if error is None else {"kind": error.kind,
                                                          "message": reason(error)})

    def failed(self, cell: Cell, started: str, error: CellFailure,
               metrics: dict[str, Metric] | None = None) -> Outcome:
        return self.outcome(cell, "failed", started, metrics=metrics, error=error)

    # --- build -----------------------------------------------------------------------------

    def artifact(self, build: BuildPlan) -> Artifact:
        """The cached artifact (built in a worker on a miss) with its size metrics."""
        path = self.cache.artifact(build.artifact_key, build.suffix)
        info = self.cache.artifact_info(build.artifact_key)
        dataset_ready = build.dataset_key is None or self.cache.dataset(build.dataset_key).exists()
        if path.exists() and info.exists() and dataset_ready:
            facts = {**(self.cache.read_json(info) or {}), "cached": True}
        else:
            try:
                facts = worker.call("bench.run.build:build_artifact",
                                    build.payload(self.cache), self.suite.settings.timeout_s,
                                    self.suite.settings.memory_mb)
            except worker.WorkerError as e:
                if e.type == "DiskFull":
                    raise DiskFull.relayed(str(e)) from None
                kind = "build" if e.kind == "error" else e.kind
                raise CellFailure(kind, f"build: {e}") from None
            facts["cached"] = False
        return self.cached_artifact(build, facts)

    def cached_artifact(self, build: BuildPlan, facts: dict[str, Any]) -> Artifact:
        """The artifact of ``build`` already in the cache, with its build ``facts``: bytes,
        hash and size metrics (an executor that built it elsewhere lands the bytes first)."""

        path = self.cache.artifact(build.artifact_key, build.suffix)
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if build.suffix == ".c":  # a classical baseline: sizes were measured by the build
            metrics = {"model_size": metric("model_size", facts["compiled_size"], "measured"),
                       "params": metric("params", facts["params"], "measured")}
            return Artifact(path, data, sha, facts, metrics, kind="c")
        params = tflite_info.inspect(data, str(path)).params  # ValueError when corrupt
        metrics = {"model_size": metric("model_size", len(data), "measured"),
                   "model_size_gzip": metric("model_size_gzip", tflite_info.gzip_size(data),
                                             "measured"),
                   "params": metric("params", params, "measured"),
                   "sparsity": metric("sparsity", tflite_info.parse_guarded(
                       tflite_sparsity, data, str(path)), "measured")}  # ValueError: corrupt
        return Artifact(path, data, sha, facts, metrics)

    # --- run one cell ----------------------------------------------------------------------

    def run(self, cell: Cell, build: BuildPlan, artifact: Artifact,
            measure: MeasureHook | None = None) -> Outcome:
        """Run ``cell`` on its device's runner: both phases (evaluate cached), energy."""
        step = self.evaluate(cell, build, artifact)
        return step if isinstance(step, Outcome) else self.measure(step, measure)

    def evaluate(self, cell: Cell, build: BuildPlan, artifact: Artifact) -> Evaluated | Outcome:
        """The first half of :meth:`run`: the runner's evaluate phase (cached). A cell that
        ends here (skipped, failed) gets its outcome; else it waits to be measured."""
        device = self.devices[cell.device]
        started = now()
        metrics = dict(artifact.metrics)
        sha = artifact.sha256
        details = {"framework": framework_of(build.model), "build": artifact.facts,
                   "dataset": build.model.dataset and
                   build.model.dataset.model_dump(mode="json"), "options": device.options}
        kind = device.connection.kind
        runner = runner_for(kind, artifact.kind)
        if runner is None:
            where = sorted({r.connection_kind for r in all_runners()
                            if artifact.kind in r.artifacts})
            return self.outcome(cell, "skipped", started, metrics=metrics, sha=sha,
                                details=details, error=CellFailure("unsupported", (
                                    f"{build.model.builder or build.model.id} is a "
                                    f"{artifact.kind!r} artifact: no runner takes it over a "
                                    f"{kind!r} connection (it runs on {', '.join(where)} "
                                    f"only)")))
        reason = runner.unsupported(artifact.data, device.options)
        details["runner"] = runner.name
        if artifact.kind == "tflite":  # judged before any interpreter allocates them
            limit = self.suite.settings.memory_mb or worker.default_memory_mb()
            too_big = tflite_info.memory_problem(tflite_info.inspect(artifact.data), limit,
                                                 f"{cell.model}/{cell.variant}")
            if too_big:
                return self.outcome(cell, "failed", started, metrics=metrics, sha=sha,
                                    details=details, error=CellFailure("memory", too_big))
        details.update(runner.provenance(device.model_dump(mode="json"), device.options))
        if reason:
            return self.outcome(cell, "skipped", started, metrics=metrics, sha=sha,
                                details=details, error=CellFailure("unsupported", reason))
        dataset = None if build.dataset_key is None else self.cache.dataset(build.dataset_key)
        settings = self.suite.settings
        options = runner.request_options(device.options, settings)
        request = RunRequest(artifact=artifact.path, dataset=dataset, options=options,
                             device=device.model_dump(mode="json"),
                             warmup=settings.warmup, repeats=settings.repeats)
        eval_key = key({"artifact": sha, "evaluate": runner.evaluate,
                        "versions": runner.versions(),
                        "dataset": build.dataset_key, "options": options})
        cacheable = runner.cache_evaluate(options)
        try:
            cached = self.cache.read_json(self.cache.evaluation(eval_key)) if cacheable else None
            details["evaluation_cached"] = cached is not None
            if cached is None:
                cached = self._phase(runner.evaluate, request, "evaluate", runner.locate_crash)
                if "skipped" not in cached and cacheable:
                    self.cache.write_json(self.cache.evaluation(eval_key), cached)
            if "skipped" in cached:
                raise CellFailure("unsupported", cached["skipped"])
            metrics.update({k: Metric.from_json(v) for k, v in cached["metrics"].items()})
            details.update(cached.get("details") or {})  # e.g. the per-layer agreement
        except CellFailure as e:
            status = "skipped" if e.kind == "unsupported" else "failed"
            return self.outcome(cell, status, started, metrics=metrics, sha=sha,
                                details=details, error=e)
        return Evaluated(cell, started, kind, artifact.kind, request, metrics, sha, details)

    def measure(self, step: Evaluated, measure: MeasureHook | None = None) -> Outcome:
        """The second half of :meth:`run`: time the evaluated cell (``measure``, or the
        runner's measure phase), add energy figures, and say what happened."""
        cell, metrics, details = step.cell, dict(step.metrics), dict(step.details)
        runner = runner_for(step.connection_kind, step.artifact_kind)
        timings: list[list[float]] = []
        trace = None
        try:
            timed = None if measure is None else measure(cell, step.request)
            if timed is not None:
                metrics.update(timed)
                details["measured_by"] = "in-process"
                if getattr(timed, "samples_ns", None) is not None:
                    timings.append(timed.samples_ns)
            else:
                processes = self.suite.settings.processes if runner.host_timing else 1
                for _ in range(processes):  # each its own worker: its own warmup and layout
                    measured = self._phase(runner.measure, step.request, "measure",
                                           runner.locate_crash)
                    if "skipped" in measured:
                        raise CellFailure("unsupported", measured["skipped"])
                    metrics.update({k: Metric.from_json(v)
                                    for k, v in measured["metrics"].items()})
                    if measured.get("samples_ns") is not None:
                        timings.append(measured["samples_ns"])
                    details.update(measured.get("details") or {})
                    trace = measured.get("trace") or trace
            samples = pooled(timings, metrics, details)
            metrics.update(energy_metrics(self.devices[cell.device], metrics,
                                          self.suite.settings.inferences_per_s))
        except CellFailure as e:
            status = "skipped" if e.kind == "unsupported" else "failed"
            return self.outcome(cell, status, step.started, metrics=metrics, sha=step.sha,
                                details=details, error=e)
        outcome = self.outcome(cell, "ok", step.started, metrics=metrics, sha=step.sha,
                               details=details)
        outcome.samples, outcome.machine = samples, host.state()
        outcome.trace = trace
        return outcome

    def _phase(self, ref: str, request: RunRequest, label: str,
               locate: str | None = None) -> dict[str, Any]:
        settings = self.suite.settings
        try:
            return worker.call("bench.runners.phase:run_phase",
                               {"ref": ref, "request": request.to_json()},
                               settings.timeout_s, settings.memory_mb)
        except worker.WorkerError as e:
            if e.type == "DiskFull":
                raise DiskFull.relayed(str(e)) from None
            kind = "runtime" if e.kind == "error" else e.kind
            located = self._locate(locate, request) if e.signal and locate else None
            where = f"{e.signal} in {located} (found rerunning the model op by op); " \
                if located else ""
            raise CellFailure(kind, f"{label}: {where}{e}") from None

    def _locate(self, ref: str, request: RunRequest) -> str | None:
        """After a phase's worker died of a signal: rerun the model op by op in a new worker
        (``ref``, a runner's ``locate_crash``); the breadcrumb it died with, if it crashed
        again."""
        settings = self.suite.settings
        try:
            worker.call(ref, {"request": request.to_json()}, settings.timeout_s,
                        settings.memory_mb)
        except worker.WorkerError as again:
            return (again.doing or None) if again.signal else None
        return None
