"""Run a suite: build once per (model, variant), run per device, isolate, record.

The CLI and the pytest plugin are thin layers over :class:`Session`. Every native step runs in
a worker subprocess; whatever happens to one cell becomes that cell's record and the suite goes
on. Records are appended as cells finish, so an interrupted run resumes from its records.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench import registry
from bench.artifacts.cache import Cache, package_version, sha256_file, versions
from bench.devices.device import Device, find_device, search_dirs
from bench.errors import SpecError
from bench.results import host, samples
from bench.results.expected import EXPECTED
from bench.results.metrics import TASK_METRICS, Metric
from bench.results.record import Record
from bench.results.store import Run, Store
from bench.run.cellwork import CellWork, MeasureHook, Outcome, now
from bench.run.executors.local import Executor
from bench.suite.constraints import check, device_fit
from bench.suite.matrix import Cell, expected_misses, plan
from bench.suite.spec import Suite

log = logging.getLogger(__name__)

RUNTIME_LIBRARIES = ("edgebench", "tensorflow-cpu", "tf-keras", "ai-edge-litert", "tflite-micro",
                     "numpy")
DELTA_METRICS = [name for task in TASK_METRICS.values() for name in task]


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


def cells_to_run(suite: Suite) -> list[Cell]:
    """The suite's cells; a :class:`SpecError` when its include/exclude rules leave none (what
    ``run`` refuses, ``list`` refuses too)."""
    cells = plan(suite)
    if not cells:
        raise SpecError(suite.source or suite.name, [(
            "include" if suite.include else "exclude",
            f"no cell left to run: the include/exclude rules remove all {len(suite.models)} × "
            f"{len(suite.variants)} × {len(suite.devices)} combinations of models × variants × "
            "devices")])
    return cells


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


@dataclass
class Session:
    suite: Suite
    store: Store
    cache: Cache = field(default_factory=Cache)
    devices_dirs: list[Path] | None = None
    on_record: Callable[[Record], None] | None = None
    #: where cells run: an executor, or the name of a registered one (``local``, ``ray``, …)
    executor: Executor | str = "local"
    #: ``--resume`` on another machine than the run started on (else refused)
    allow_mixed_hosts: bool = False

    def __post_init__(self) -> None:
        self.devices = resolve_devices(self.suite, self.devices_dirs)
        self.cells = cells_to_run(self.suite)
        if isinstance(self.executor, str):
            self.executor = registry.executors.get(self.executor)
        self.work = CellWork(self.suite, self.devices, self.cache)
        self._mixed_hosts: str | None = None
        self._commit = _git_commit()
        self._ok_metrics: dict[tuple[str, str, str], dict[str, Metric]] = {}

    # --- run -------------------------------------------------------------------------------

    def run(self, resume: bool = False) -> Run:
        """Run every cell (or, with ``resume``, those the latest run of this suite lacks)."""
        self.store.check_root()
        run = self.store.latest(self.suite.name) if resume else None
        if run is None:
            run = self.start_run()
        else:
            run.repair_tail()
            self._check_same_machine(run)
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
            "cells": [c.id for c in (self.cells if cells is None else cells)], "started": now(),
            "reference_variant": self.suite.settings.reference_variant,
            "report": [t.model_dump(mode="json") for t in self.suite.report],
            "machine": host.state()})

    def _check_same_machine(self, run: Run) -> None:
        """Resuming on another machine mixes timings: refused unless ``allow_mixed_hosts``,
        and then every new record says where the run started."""
        started_on = run.manifest().get("machine")
        if not isinstance(started_on, dict):
            return
        here = host.identity(host.state())
        there = host.identity(started_on)
        if here == there:
            return
        diff = ", ".join(f"{k} {there[k]!r} → {here[k]!r}" for k in here if here[k] != there[k])
        if not self.allow_mixed_hosts:
            raise MixedHosts(f"run {run.suite}/{run.run_id} was started on another machine "
                             f"({diff}); resuming here would mix timings — pass "
                             "--allow-mixed-hosts to resume anyway")
        self._mixed_hosts = f"resumed on another machine than the run started on ({diff})"

    def run_cells(self, run: Run, cells: list[Cell],
                  measure: MeasureHook | None = None) -> Iterator[Record]:
        """Run ``cells`` into ``run``, yielding each record once appended. ``measure``, when
        given, may time a cell in-process instead of the runner's measure phase: it gets the
        cell and its run request and returns latency metrics, or None to use the runner."""
        for record in self._records(run, cells, measure):
            run.append(record)
            if record.status == "ok":
                self._ok_metrics[(record.model, record.variant, record.device)] = record.metrics
            if self.on_record:
                self.on_record(record)
            yield record

    def _records(self, run: Run, cells: list[Cell],
                 measure: MeasureHook | None = None) -> Iterator[Record]:
        """Records of ``cells`` as the executor's outcomes arrive. A cell whose deltas or
        constraints need another cell of this batch (its reference variant, a
        ``min_delta_vs`` variant) waits for that cell's record."""
        batch = {(c.model, c.variant, c.device) for c in cells}
        waiting: dict[str, Outcome] = {}
        finished: set[tuple[str, str, str]] = set()
        # the variants a record is computed against (same model and device)
        needed = {self.suite.settings.reference_variant,
                  *(r.min_delta_vs for r in self.suite.constraints.values() if r.min_delta_vs)}

        def ready(outcome: Outcome) -> bool:
            c = outcome.cell
            return all(dep in finished or dep not in batch
                       for dep in ((c.model, v, c.device) for v in needed if v != c.variant))

        for outcome in self.executor.outcomes(self.work, cells, measure):
            waiting[outcome.cell.id] = outcome
            progress = True
            while progress:
                progress = False
                for cell_id, pending in list(waiting.items()):
                    if ready(pending):
                        del waiting[cell_id]
                        finished.add((pending.cell.model, pending.cell.variant,
                                      pending.cell.device))
                        progress = True
                        yield self._record(run, pending)
        for pending in waiting.values():  # a dependency the executor never delivered
            yield self._record(run, pending)

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

    def _record(self, run: Run, outcome: Outcome) -> Record:
        """The record of an outcome: deltas and constraints against the recorded cells; its raw
        timings are stored beside it."""
        cell, metrics, status = outcome.cell, dict(outcome.metrics), outcome.status
        details = dict(outcome.details)
        if outcome.samples is not None:
            details["samples"] = samples.save(run.path, cell.id, outcome.samples)
        if outcome.trace is not None:
            details["trace"] = samples.save_trace(run.path, cell.id, outcome.trace)
        if self._mixed_hosts:
            details["mixed_hosts"] = self._mixed_hosts
        if expected := expected_misses(self.suite, cell):
            details[EXPECTED] = expected
        device = self.devices[cell.device]
        constraints = {}
        if status == "ok":
            self._add_deltas(cell, metrics)

            def reference(variant: str) -> dict[str, Metric] | None:
                return self._ok_metrics.get((cell.model, variant, cell.device))

            constraints = {name: check(name, rule, metrics, reference)
                           for name, rule in self.suite.constraints.items()}
            constraints.update(device_fit(device, metrics))
        return Record(
            suite=self.suite.name, run_id=run.run_id, cell_id=cell.id, model=cell.model,
            variant=cell.variant, device=cell.device,
            runner=outcome.details.get("runner") or device.runner, status=status,
            artifact_sha256=outcome.sha, metrics=metrics, constraints=constraints,
            error=outcome.error, details=details,
            provenance={"versions": versions(RUNTIME_LIBRARIES), "host": outcome.host,
                        **({"machine": outcome.machine} if outcome.machine else {}),
                        "git_commit": self._commit, "started": outcome.started,
                        "ended": outcome.ended, "edgebench": package_version("edgebench"),
                        **({"phases": outcome.phases} if outcome.phases else {})},
        )


class MixedHosts(LookupError):
    """A resume on another machine than the one its run started on."""


def run_suite(suite: Suite, results: Path | str = "results", *, resume: bool = False,
              cache: Cache | None = None, devices_dirs: list[Path] | None = None,
              on_record: Callable[[Record], None] | None = None,
              executor: Executor | str = "local") -> Run:
    """Library entry point: run ``suite`` into the store at ``results``."""
    session = Session(suite, Store(results), cache or Cache(), devices_dirs, on_record,
                      executor)
    started = time.monotonic()
    run = session.run(resume=resume)
    log.info("run %s finished in %.1f s", run.run_id, time.monotonic() - started)
    return run
