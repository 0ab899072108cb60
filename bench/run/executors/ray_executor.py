"""``ray``: run a suite's builds and cells as Ray tasks, on this machine or a cluster.

The driver (the process running the session) plans; Ray places. Each (model, variant) build is
a task (builds of one trained model wait for the first, on its node, so it is trained once);
its cells are tasks that wait for the build's files. A board cell asks for its board's resource
(:mod:`bench.run.executors.resources`) and so runs on the host it is plugged into, one at a time. A
host-timed cell is two tasks: its evaluation runs beside other work, its measurement holds the
node's whole quiet share. Outcomes come back in any order; only the driver writes records.

Faults: a task whose node (or worker) is lost is run again once where it can run, else its cell
fails with ``node lost``; a board whose node has left fails its cells at once instead of
waiting. A run that stops early (Ctrl-C, or the consumer closing the generator) cancels no task
one by one: its tasks share the driver's fate, and ``ray.shutdown`` on the way out ends them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bench.devices.device import Device
from bench.run.build import BuildPlan, plan_build
from bench.run.cellwork import CellFailure, CellWork, Evaluated, MeasureHook, Outcome, now
from bench.run.executors import tasks
from bench.run.executors.resources import (
    QUIET,
    QUIET_UNITS,
    board_resource,
    exclusive,
    host_timed,
    node_resources,
)
from bench.suite.matrix import Cell

log = logging.getLogger(__name__)

Group = tuple[str, str]  # (model, variant): one build


@dataclass
class RayExecutor:
    """Runs cells as Ray tasks: on a new local Ray instance, or the cluster at ``address``."""

    name: ClassVar[str] = "ray"
    #: ``HOST:PORT`` of a running cluster's head; None: start Ray on this machine for the run
    address: str | None = None
    #: CPUs of the local instance (default: all of this machine's)
    num_cpus: int | None = None
    #: runs of a task after its node is lost
    retries: int = 1
    #: seconds between looks at the cluster (lost nodes, progress)
    poll_s: float = 1.0
    #: called with the number of edgebench tasks running on each node, every ``poll_s``
    on_running: Callable[[dict[str, int]], None] | None = None

    def configured(self, **options: Any) -> RayExecutor:
        """This executor with some fields changed (``address``, ``on_running``, …)."""
        return dataclasses.replace(self, **options)

    def outcomes(self, work: CellWork, cells: list[Cell],
                 measure: MeasureHook | None = None) -> Iterator[Outcome]:
        if measure is not None:
            raise ValueError("the ray executor times cells on the cluster's nodes; an "
                             "in-process measure hook needs the local executor")
        with connected(self.address, self.num_cpus, list(work.devices.values())):
            yield from _Dispatch(self, work, cells).outcomes()


RAY = RayExecutor()


@contextmanager
def connected(address: str | None, num_cpus: int | None,
              devices: list[Device]) -> Iterator[None]:
    """Ray for the length of a run: the cluster at ``address``, or a new instance here whose
    resources are this machine's CPUs, the quiet share and the boards attached to it. A
    connection made before (by a test, a notebook) is used as is and left open."""
    import ray

    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                               "logging_level": logging.WARNING}
    if address:
        options["address"] = address
    else:
        options.update(address="local", num_cpus=num_cpus, resources=node_resources(devices),
                       _node_name=platform.node())
        # a private instance: its token (Ray's default for a new one) is nothing to act on
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
            logging.ERROR)
    # Ray puts the driver's working directory on its workers' sys.path: start from an empty
    # one, so a stray module where `edgebench run` is started cannot shadow another.
    neutral = tempfile.mkdtemp(prefix="edgebench-ray-")
    cwd = os.getcwd()
    try:
        os.chdir(neutral)
        try:
            ray.init(**options)
        finally:
            os.chdir(cwd)
        yield
    finally:
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(neutral, ignore_errors=True)


@dataclass
class _Task:
    """A submitted task: what it is for, and how often it has run."""

    kind: str  # build | cell | evaluate | measure
    group: Group
    cell: Cell | None = None
    attempt: int = 1
    started: str = field(default_factory=now)
    board: str | None = None  # the board resource it needs
    node: str | None = None  # the node it is pinned to


class _Dispatch:
    """One run's driver loop: submit, wait, resubmit what a lost node took, hand outcomes on."""

    def __init__(self, executor: RayExecutor, work: CellWork, cells: list[Cell]) -> None:
        import ray

        self.ray, self.executor, self.work = ray, executor, work
        driver_node = ray.get_runtime_context().get_node_id()
        self.job = ray.put(tasks.Job(work.suite, work.devices, str(work.cache.root.resolve()),
                                     driver_node))
        self.driver_node = driver_node
        self.groups: dict[Group, list[Cell]] = {}
        for cell in cells:
            self.groups.setdefault((cell.model, cell.variant), []).append(cell)
        self.plans: dict[Group, BuildPlan] = {}
        self.built: dict[Group, tuple[Any, dict[str, Any]]] = {}  # (ref of result, its phase)
        self.followers: dict[str, list[Group]] = {}  # model key → builds waiting for the first
        self.pending: dict[Any, _Task] = {}
        self.deferred: list[tuple[Cell, int, str]] = []  # CPU cells held back for builds
        self.seen_boards: set[str] = set()
        self.losses: dict[str, list[dict[str, Any]]] = {}  # cell id → lost runs before this
        self.nodes: list[dict[str, Any]] = []
        self.remote = {name: ray.remote(getattr(tasks, name))
                       for name in ("build", "run_cell", "evaluate_cell", "measure_cell")}

    # --- the loop ------------------------------------------------------------------------------

    def outcomes(self) -> Iterator[Outcome]:
        """Each cell's outcome once; one that was run again after a loss lists the loss first
        in its ``phases``."""
        for outcome in self._outcomes():
            yield dataclasses.replace(outcome, phases=[
                *self.losses.pop(outcome.cell.id, []), *outcome.phases])

    def _outcomes(self) -> Iterator[Outcome]:
        try:
            self.look()
            yield from self.start_builds()
            next_look = time.monotonic() + self.executor.poll_s
            while self.pending or self.deferred:  # (cells are deferred only behind builds)
                ready, _ = self.ray.wait(list(self.pending), num_returns=1,
                                         timeout=self.executor.poll_s)
                if ready:
                    ready, _ = self.ray.wait(list(self.pending), num_returns=len(self.pending),
                                             timeout=0)
                for ref in ready:
                    if ref in self.pending:
                        yield from self.finished(ref, self.pending.pop(ref))
                yield from self.undefer()
                if time.monotonic() >= next_look:
                    self.look()
                    yield from self.drop_stranded()
                    next_look = time.monotonic() + self.executor.poll_s
        except (KeyboardInterrupt, GeneratorExit):
            # Ctrl-C: no ray.cancel, which can race a reply on its way and abort the driver
            # inside Ray ("Tried to complete task that was not pending"); the tasks share the
            # driver's fate, so ray.shutdown() on the way out ends them (and their workers).
            self.pending.clear()
            raise
        finally:
            for ref in self.pending:  # another error: leave nothing running
                self.cancel(ref)
            self.pending.clear()
            self.deferred.clear()

    def cancel(self, ref: Any) -> None:
        """Cancel a task: a queued one is dropped, a running one gets KeyboardInterrupt, which
        stops the worker subprocess it waits for (not ``force``: killing the Ray worker while
        its reply is on the way can abort the driver)."""
        with suppress(Exception):  # already finished, or its node is gone
            self.ray.cancel(ref, force=False)

    def look(self) -> None:
        """Refresh the alive nodes; report what runs on each."""
        self.nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        for node in self.nodes:
            self.seen_boards.update(r for r in node["Resources"] if r.startswith("board:"))
        if self.executor.on_running is not None:
            self.executor.on_running(self.running())

    def running(self) -> dict[str, int]:
        """Edgebench tasks running on each node (a quiet measurement counts as one)."""
        from ray._private.state import available_resources_per_node

        try:
            free = available_resources_per_node()
        except Exception:  # noqa: BLE001 - a progress figure is not worth failing a run
            return {}
        counts = {}
        for node in self.nodes:
            total = node["Resources"].get(QUIET, 0)
            if total and node["NodeID"] in free:  # a resource all in use is left out
                used = total - free[node["NodeID"]].get(QUIET, 0)
                counts[node.get("NodeName") or node["NodeManagerAddress"]] = int(
                    used if used < QUIET_UNITS else 1)
        return counts

    def builds_queued(self) -> bool:
        """Whether a build may wait for a CPU: at least as many unfinished builds as the
        edgebench nodes have CPUs. A CPU cell submitted now would compete with it, and Ray has
        no priorities: builds go first, since cells wait for them (the long pole of a sweep)."""
        cpus = sum(n["Resources"].get("CPU", 0) for n in self.nodes if QUIET in n["Resources"])
        return sum(t.kind == "build" for t in self.pending.values()) >= max(cpus, 1)

    def undefer(self) -> Iterator[Outcome]:
        """Submit the CPU cells held back, once no build waits for a CPU."""
        if self.deferred and not self.builds_queued():
            held, self.deferred = self.deferred, []
            for cell, attempt, started in held:
                yield from self.submit_cell(cell, attempt, started)

    def can_run(self, task: _Task) -> bool:
        """Whether an alive node has what ``task`` needs."""
        need = task.board or QUIET
        return any(need in n["Resources"] and (task.node is None or n["NodeID"] == task.node)
                   for n in self.nodes)

    # --- submitting ---------------------------------------------------------------------------

    def submit(self, task: _Task, fn: str, *args: Any, **options: Any) -> None:
        ref = self.remote[fn].options(max_retries=0, **options).remote(self.job, *args)
        self.pending[ref] = task

    def start_builds(self) -> Iterator[Outcome]:
        models = {m.id: m for m in self.work.suite.models}
        variants = {v.id: v for v in self.work.suite.variants}
        first: set[str] = set()
        for group, cells in self.groups.items():
            started = now()
            try:
                plan = plan_build(models[group[0]], variants[group[1]], models)
            except (OSError, ValueError) as e:
                yield from (self.work.failed(c, started, CellFailure("artifact", str(e)))
                            for c in cells)
                continue
            self.plans[group] = plan
            if plan.model_key in first:
                self.followers.setdefault(plan.model_key, []).append(group)
            else:
                first.add(plan.model_key)
                self.submit_build(group)

    def submit_build(self, group: Group, near: str | None = None, attempt: int = 1) -> None:
        """A build task; ``near``: the node that trained its model (preferred, not required).
        A model read from a file is built on the driver's node if it can."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        plan = self.plans[group]
        if near is None and plan.model.path is not None:
            near = self.driver_node
        options: dict[str, Any] = {"num_cpus": 1, "resources": {QUIET: 1}}
        if near is not None:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(near, soft=True)
        self.submit(_Task("build", group, attempt=attempt), "build", plan, **options)

    def submit_cell(self, cell: Cell, attempt: int = 1,
                    started: str | None = None) -> Iterator[Outcome]:
        """The cell's task(s), or its failed outcome when no node can run it."""
        group = (cell.model, cell.variant)
        built, built_phase = self.built[group]
        device = self.work.devices[cell.device]
        task = _Task("cell", group, cell, attempt, started or now())
        if exclusive(device) is not None:
            task.board = board_resource(device.id)
            if not self.can_run(task):
                yield self.unreachable(task, built_phase)
                return
            self.submit(task, "run_cell", cell, self.plans[group], built, device.id,
                        num_cpus=0, resources={QUIET: 1, task.board: 1})
        elif not self.can_run(task):
            yield self.unreachable(task, built_phase)
        elif self.builds_queued():
            self.deferred.append((cell, attempt, task.started))
        elif host_timed(device):
            task.kind = "evaluate"
            self.submit(task, "evaluate_cell", cell, self.plans[group], built,
                        num_cpus=1, resources={QUIET: 1})
        else:
            self.submit(task, "run_cell", cell, self.plans[group], built,
                        num_cpus=1, resources={QUIET: 1})

    def submit_measure(self, task: _Task, step: Evaluated, phases: list[dict]) -> None:
        """The quiet half of a host-timed cell, on the node that evaluated it."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        node = phases[-1]["node_id"]
        measure = dataclasses.replace(task, kind="measure", node=node)
        self.submit(measure, "measure_cell", step, phases, num_cpus=1,
                    resources={QUIET: QUIET_UNITS},
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))

    # --- results ------------------------------------------------------------------------------

    def finished(self, ref: Any, task: _Task) -> Iterator[Outcome]:
        from ray.exceptions import RayError, RayTaskError, TaskCancelledError

        try:
            value = self.ray.get(ref)
        except TaskCancelledError:
            return
        except RayTaskError as e:  # a harness bug in the task: that cell (or build) fails
            error = CellFailure("internal", f"{type(e.cause).__name__}: {e.cause}")
            yield from self.failed(task, error)
            return
        except RayError as e:
            yield from self.lost(task, f"{type(e).__name__}: {str(e).splitlines()[0]}")
            return
        if task.kind == "build":
            yield from self.build_done(task, value, ref)
        elif task.kind == "evaluate" and isinstance(value[0], Evaluated):
            self.submit_measure(task, *value)
        else:
            yield value[0] if task.kind == "evaluate" else value

    def release(self, group: Group, near: str | None = None) -> None:
        """Submit the builds that waited for ``group``'s (whether it worked or not)."""
        for follower in self.followers.pop(self.plans[group].model_key, []):
            self.submit_build(follower, near=near)

    def build_done(self, task: _Task, result: dict[str, Any], ref: Any) -> Iterator[Outcome]:
        """Its cells, given the build's result (``ref``: it stays in the object store, held by
        the driver, for every cell task to read)."""
        self.release(task.group, near=result["phase"]["node_id"])
        if "error" in result:
            error = CellFailure(result["error"]["kind"], result["error"]["message"])
            for cell in self.groups[task.group]:
                yield dataclasses.replace(self.work.failed(cell, task.started, error),
                                          phases=[result["phase"]])
            return
        self.built[task.group] = (ref, result["phase"])
        for cell in self.groups[task.group]:
            yield from self.submit_cell(cell, started=task.started)

    def failed(self, task: _Task, error: CellFailure) -> Iterator[Outcome]:
        if task.kind == "build":
            self.release(task.group)
        cells = self.groups[task.group] if task.kind == "build" else [task.cell]
        for cell in cells:
            yield self.work.failed(cell, task.started, error)

    def lost(self, task: _Task, reason: str) -> Iterator[Outcome]:
        """A task whose node or worker went away: run it again once where it can run."""
        log.warning("%s %s lost (attempt %d): %s", task.kind, task.cell.id if task.cell
                    else "/".join(task.group), task.attempt, reason)
        if task.attempt <= self.executor.retries:
            self.look()
            again = dataclasses.replace(task, node=None, attempt=task.attempt + 1)
            if self.can_run(again):
                loss = {"phase": "lost", "task": task.kind, "attempt": task.attempt,
                        "reason": reason, "at": time.time()}
                for cell in self.groups[task.group] if task.kind == "build" else [task.cell]:
                    self.losses.setdefault(cell.id, []).append(loss)
                if task.kind == "build":
                    self.submit_build(task.group, attempt=again.attempt)
                else:
                    yield from self.submit_cell(task.cell, again.attempt, task.started)
                return
        tried = f" (tried {task.attempt} times)" if task.attempt > 1 else ""
        yield from self.failed(task, CellFailure("lost", f"node lost{tried}: {reason}"))

    def unreachable(self, task: _Task, built_phase: dict) -> Outcome:
        """The outcome of a cell no alive node can run."""
        if task.board is None:
            message = (f"node lost: no node of the cluster runs edgebench tasks now (none "
                       f"advertises {QUIET}; start nodes with `edgebench agent`)")
        elif task.board in self.seen_boards:
            message = f"node lost: the node with {task.board} left the cluster"
        else:
            message = (f"no node of the cluster has {task.board}: run `edgebench agent "
                       f"--devices-dir DIR --address HEAD:PORT` on the host it is plugged into "
                       f"(its device file in DIR, its port present)")
        kind = "lost" if message.startswith("node lost") else "unavailable"
        outcome = self.work.failed(task.cell, task.started, CellFailure(kind, message))
        return dataclasses.replace(outcome, phases=[built_phase])

    def drop_stranded(self) -> Iterator[Outcome]:
        """Pending tasks no alive node can run (their board's or pinned node has gone): cancel
        them and treat them as lost, rather than wait for ever."""
        for ref, task in list(self.pending.items()):
            if task.kind != "build" and not self.can_run(task):
                del self.pending[ref]
                self.cancel(ref)
                where = task.board or "its node"
                yield from self.lost(task, f"{where} left the cluster")
