"""Run a suite: build once per (model, variant), run per device, isolate, record.

The CLI and the pytest plugin are thin layers over :class:`Session`. Every native step runs in
a worker subprocess; whatever happens to one cell becomes that cell's record and the suite goes
on. Records are appended as cells finish, so an interrupted run resumes from its records.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import Any

from bench import worker
from bench.build import BuildPlan, plan_build
from bench.cache import Cache, key, package_version, sha256_file, versions
from bench.connections import all_runners, runner_for
from bench.constraints import check, device_fit
from bench.devices import Device, find_device, search_dirs
from bench.energy import energy_metrics
from bench.errors import SpecError
from bench.matrix import Cell, plan
from bench.metrics import TASK_METRICS, Metric, metric
from bench.record import Record
from bench.runners.base import RunRequest
from bench.spec import Suite
from bench.store import Run, Store

log = logging.getLogger(__name__)

RUNTIME_LIBRARIES = ("edgebench", "tensorflow-cpu", "tf-keras", "ai-edge-litert", "tflite-micro",
                     "numpy")
DELTA_METRICS = [name for task in TASK_METRICS.values() for name in task]
#: Times one cell in-process (``run_cells(measure=...)``): latency metrics, or None.
MeasureHook = Callable[[Cell, RunRequest], "dict[str, Metric] | None"]


@dataclass(frozen=True)
class Artifact:
    """A built .tflite: its bytes, hash, build facts and size metrics (read once per build)."""

    path: Path
    data: bytes
    sha256: str
    facts: dict[str, Any]
    metrics: dict[str, Metric]
    kind: str = "tflite"  # or "c": a classical baseline's generated C


class CellFailure(Exception):
    """A cell-level failure with the kind of error for the record."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def resolve_devices(suite: Suite, dirs: list[Path] | None = None) -> dict[str, Device]:
    """Load the suite's devices; an unknown id is a suite error."""
    where = search_dirs(dirs, suite.source)
    devices, problems = {}, []
    for i, device_id in enumerate(suite.devices):
        try:
            device = find_device(device_id, where)
        except LookupError as e:
            problems.append((f"devices[{i}]", str(e)))
            continue
        devices[device_id] = device
    if problems:
        raise SpecError(suite.source or suite.name, problems)
    return devices


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Session:
    suite: Suite
    store: Store
    cache: Cache = field(default_factory=Cache)
    devices_dirs: list[Path] | None = None
    on_record: Callable[[Record], None] | None = None

    def __post_init__(self) -> None:
        self.devices = resolve_devices(self.suite, self.devices_dirs)
        self.cells = plan(self.suite)
        if not self.cells:
            raise SpecError(self.suite.source or self.suite.name, [(
                "include" if self.suite.include else "exclude",
                f"no cell left to run: the include/exclude rules remove all "
                f"{len(self.suite.models)} × {len(self.suite.variants)} × "
                f"{len(self.suite.devices)} combinations of models × variants × devices")])
        self._host = {"node": platform.node(), "platform": platform.platform(),
                      "machine": platform.machine(), "python": platform.python_version()}
        self._commit = _git_commit()
        self._ok_metrics: dict[tuple[str, str, str], dict[str, Metric]] = {}

    # --- run -------------------------------------------------------------------------------

    def run(self, resume: bool = False) -> Run:
        """Run every cell (or, with ``resume``, those the latest run of this suite lacks)."""
        run = self.store.latest(self.suite.name) if resume else None
        if run is None:
            run = self.start_run()
        else:
            run.repair_tail()
            if self.suite.source and run.manifest().get("suite_sha256") != sha256_file(
                    self.suite.source):
                log.warning("%s changed since run %s started; resuming with the current file",
                            self.suite.source, run.run_id)
        done = set()
        for r in run.records():
            done.add(r.cell_id)
            if r.status == "ok":
                self._ok_metrics[(r.model, r.variant, r.device)] = r.metrics
        todo = [c for c in self.cells if c.id not in done]
        log.info("run %s: %d cells, %d to do", run.run_id, len(self.cells), len(todo))
        for _ in self.run_cells(run, todo):
            pass
        return run

    def start_run(self, cells: list[Cell] | None = None, run_id: str | None = None) -> Run:
        """Create a new run folder of this suite whose manifest lists ``cells`` (default: all);
        ``run_id`` joins a run shared by several processes (see :meth:`Store.create`)."""
        return self.store.create(self.suite.name, run_id=run_id, manifest={
            "suite_file": str(self.suite.source) if self.suite.source else None,
            "suite_sha256": sha256_file(self.suite.source) if self.suite.source else None,
            "cells": [c.id for c in (self.cells if cells is None else cells)], "started": _now(),
            "reference_variant": self.suite.settings.reference_variant,
            "report": [t.model_dump(mode="json") for t in self.suite.report]})

    def run_cells(self, run: Run, cells: list[Cell],
                  measure: MeasureHook | None = None) -> Iterator[Record]:
        """Run ``cells`` into ``run``, yielding each record once appended. ``measure``, when
        given, may time a cell in-process instead of the runner's measure phase: it gets the
        cell and its run request and returns latency metrics, or None to use the runner."""
        for record in self._records(run.run_id, cells, measure):
            run.append(record)
            if record.status == "ok":
                self._ok_metrics[(record.model, record.variant, record.device)] = record.metrics
            if self.on_record:
                self.on_record(record)
            yield record

    def _records(self, run_id: str, cells: list[Cell],
                 measure: MeasureHook | None = None) -> Iterator[Record]:
        models = {m.id: m for m in self.suite.models}
        variants = {v.id: v for v in self.suite.variants}
        for (model_id, variant_id), group in groupby(cells, key=lambda c: (c.model, c.variant)):
            group = list(group)
            started = _now()
            try:
                build = plan_build(models[model_id], variants[variant_id], models)
                artifact = self._artifact(build)
            except CellFailure as e:
                for cell in group:
                    yield self._record(run_id, cell, "failed", started, error=e)
                continue
            except (OSError, ValueError) as e:
                for cell in group:
                    yield self._record(run_id, cell, "failed", started,
                                       error=CellFailure("artifact", str(e)))
                continue
            for cell in group:
                try:
                    yield self._run_cell(run_id, cell, build, artifact, measure)
                except Exception as e:  # a harness bug in one cell must not end the suite
                    log.exception("cell %s", cell.id)
                    yield self._record(run_id, cell, "failed", started, metrics=artifact.metrics,
                                       error=CellFailure("internal", f"{type(e).__name__}: {e}"))

    # --- build -----------------------------------------------------------------------------

    def _artifact(self, build: BuildPlan) -> Artifact:
        """The cached artifact (built in a worker on a miss) with its size metrics."""
        from bench import tflite_info
        from bench.variants.prune import tflite_sparsity

        path = self.cache.artifact(build.artifact_key, build.suffix)
        info = self.cache.artifact_info(build.artifact_key)
        dataset_ready = build.dataset_key is None or self.cache.dataset(build.dataset_key).exists()
        if path.exists() and info.exists() and dataset_ready:
            facts = {**(self.cache.read_json(info) or {}), "cached": True}
        else:
            try:
                facts = worker.call("bench.build:build_artifact", build.payload(self.cache),
                                    self.suite.settings.timeout_s)
            except worker.WorkerError as e:
                kind = "build" if e.kind == "error" else e.kind
                raise CellFailure(kind, f"build: {e}") from None
            facts["cached"] = False
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
                   "sparsity": metric("sparsity", tflite_sparsity(data), "measured")}
        return Artifact(path, data, sha, facts, metrics)

    # --- run one cell ----------------------------------------------------------------------

    def _run_cell(self, run_id: str, cell: Cell, build: BuildPlan,
                  artifact: Artifact, measure: MeasureHook | None = None) -> Record:
        device = self.devices[cell.device]
        started = _now()
        metrics = dict(artifact.metrics)
        sha = artifact.sha256
        details = {"build": artifact.facts, "dataset": build.model.dataset and
                   build.model.dataset.model_dump(mode="json"), "options": device.options}
        kind = device.connection.kind
        runner = runner_for(kind, artifact.kind)
        if runner is None:
            where = sorted({r.connection_kind for r in all_runners()
                            if artifact.kind in r.artifacts})
            return self._record(run_id, cell, "skipped", started, metrics=metrics, sha=sha,
                                details=details, error=CellFailure("unsupported", (
                                    f"{build.model.builder or build.model.id} is a "
                                    f"{artifact.kind!r} artifact: no runner takes it over a "
                                    f"{kind!r} connection (it runs on {', '.join(where)} "
                                    f"only)")))
        reason = runner.unsupported(artifact.data, device.options)
        details["runner"] = runner.name
        details.update(runner.provenance(device.model_dump(mode="json"), device.options))
        if reason:
            return self._record(run_id, cell, "skipped", started, metrics=metrics, sha=sha,
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
                cached = self._phase(runner.evaluate, request, "evaluate")
                if "skipped" not in cached and cacheable:
                    self.cache.write_json(self.cache.evaluation(eval_key), cached)
            if "skipped" in cached:
                raise CellFailure("unsupported", cached["skipped"])
            metrics.update({k: Metric.from_json(v) for k, v in cached["metrics"].items()})
            timed = None if measure is None else measure(cell, request)
            if timed is not None:
                metrics.update(timed)
                details["measured_by"] = "in-process"
            else:
                measured = self._phase(runner.measure, request, "measure")
                if "skipped" in measured:
                    raise CellFailure("unsupported", measured["skipped"])
                metrics.update({k: Metric.from_json(v) for k, v in measured["metrics"].items()})
            metrics.update(energy_metrics(device, metrics, settings.inferences_per_s))
        except CellFailure as e:
            status = "skipped" if e.kind == "unsupported" else "failed"
            return self._record(run_id, cell, status, started, metrics=metrics, sha=sha,
                                details=details, error=e)
        self._add_deltas(cell, metrics)
        return self._record(run_id, cell, "ok", started, metrics=metrics, sha=sha,
                            details=details)

    def _phase(self, ref: str, request: RunRequest, label: str) -> dict[str, Any]:
        try:
            return worker.call("bench.runners.phase:run_phase",
                               {"ref": ref, "request": request.to_json()},
                               self.suite.settings.timeout_s)
        except worker.WorkerError as e:
            kind = "runtime" if e.kind == "error" else e.kind
            raise CellFailure(kind, f"{label}: {e}") from None

    def _add_deltas(self, cell: Cell, metrics: dict[str, Metric]) -> None:
        """``<task metric>_delta`` against the reference variant of the same model and device."""
        ref_variant = self.suite.settings.reference_variant
        ref = self._ok_metrics.get((cell.model, ref_variant, cell.device))
        if ref is None or cell.variant == ref_variant:
            return
        for name in DELTA_METRICS:
            if name in metrics and name in ref:
                m = metrics[name]
                metrics[f"{name}_delta"] = Metric(m.value - ref[name].value, m.unit, m.method)

    def _record(self, run_id: str, cell: Cell, status: str, started: str, *,
                metrics: dict[str, Metric] | None = None, sha: str | None = None,
                details: dict[str, Any] | None = None,
                error: CellFailure | None = None) -> Record:
        metrics = metrics or {}
        device = self.devices[cell.device]
        constraints = {}
        if status == "ok":
            def reference(variant: str) -> dict[str, Metric] | None:
                return self._ok_metrics.get((cell.model, variant, cell.device))

            constraints = {name: check(name, rule, metrics, reference)
                           for name, rule in self.suite.constraints.items()}
            constraints.update(device_fit(device, metrics))
        return Record(
            suite=self.suite.name, run_id=run_id, cell_id=cell.id, model=cell.model,
            variant=cell.variant, device=cell.device,
            runner=(details or {}).get("runner", device.runner), status=status,
            artifact_sha256=sha, metrics=metrics, constraints=constraints,
            error=None if error is None else {"kind": error.kind, "message": str(error)},
            details=details or {},
            provenance={"versions": versions(RUNTIME_LIBRARIES), "host": self._host,
                        "git_commit": self._commit, "started": started, "ended": _now(),
                        "edgebench": package_version("edgebench")},
        )


def run_suite(suite: Suite, results: Path | str = "results", *, resume: bool = False,
              cache: Cache | None = None, devices_dirs: list[Path] | None = None,
              on_record: Callable[[Record], None] | None = None) -> Run:
    """Library entry point: run ``suite`` into the store at ``results``."""
    session = Session(suite, Store(results), cache or Cache(), devices_dirs, on_record)
    started = time.monotonic()
    run = session.run(resume=resume)
    log.info("run %s finished in %.1f s", run.run_id, time.monotonic() - started)
    return run
