"""What a Ray task does on its node: build an artifact, or run a cell or one of its halves.

Each node keeps its own content-addressed cache: a build task returns the files it produced
(artifact, build facts, data set) and a cell task lands them in its node's cache under the same
keys before running, so nodes need no shared filesystem and nothing is rebuilt. Tasks on the
driver's node use the driver's cache; others use the node's (``EDGEBENCH_CACHE`` of the node,
which ``edgebench agent`` sets). Every phase is stamped with its node and Unix times, so a
record's provenance says where and when its build, evaluation and measurement ran.

These are plain functions: :mod:`bench.run.executors.ray_executor` wraps them as Ray tasks.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from bench.artifacts.cache import Cache, write_atomic
from bench.devices.device import Device, load_device
from bench.run.build import BuildPlan
from bench.run.cellwork import Artifact, CellFailure, CellWork, Evaluated, Outcome, this_host
from bench.suite.matrix import Cell
from bench.suite.spec import Suite

Phase = dict[str, Any]


@dataclass(frozen=True)
class Job:
    """One run's shared inputs, shipped to the cluster once."""

    suite: Suite
    devices: dict[str, Device]
    cache_root: str  # the driver's cache (absolute)
    driver_node: str  # the driver's Ray node id


def here() -> tuple[str, str]:
    """This task's Ray node: (id, name)."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    return node_id, _node_name(node_id)


@cache
def _node_name(node_id: str) -> str:
    import ray

    for node in ray.nodes():
        if node["NodeID"] == node_id:
            return node.get("NodeName") or node["NodeManagerAddress"]
    return platform.node()


def node_host() -> dict[str, str]:
    """A record's ``provenance.host`` for work done here: the machine and its Ray node."""
    node_id, name = here()
    return {**this_host(), "ray_node": name, "ray_node_id": node_id}


def phase(name: str, started: float, **extra: Any) -> Phase:
    node_id, node_name = here()
    return {"phase": name, "node": node_name, "node_id": node_id, "started": started,
            "ended": time.time(), **extra}


def _local_device(device: Device) -> Device:
    """The node's own file for ``device`` (``EDGEBENCH_DEVICES``, set by ``edgebench agent``),
    which knows the port the board has on this host; else the driver's."""
    for folder in filter(None, os.environ.get("EDGEBENCH_DEVICES", "").split(os.pathsep)):
        path = Path(folder) / f"{device.id}.yaml"
        if path.is_file():
            return load_device(path)
    return device


def node_work(job: Job, board: str | None = None) -> CellWork:
    """The suite's work with this node's cache (and this host's file for ``board``)."""
    node_id, _ = here()
    cache = Cache(Path(job.cache_root)) if node_id == job.driver_node else Cache()
    devices = dict(job.devices)
    if board is not None:
        devices[board] = _local_device(devices[board])
    return CellWork(job.suite, devices, cache)


def _files(cache: Cache, plan: BuildPlan) -> dict[str, bytes]:
    """The cache files of a build, by path under the cache root."""
    paths = [cache.artifact(plan.artifact_key, plan.suffix), cache.artifact_info(plan.artifact_key)]
    if plan.dataset_key is not None:
        paths.append(cache.dataset(plan.dataset_key))
    return {str(p.relative_to(cache.root)): p.read_bytes() for p in paths}


def land(cache: Cache, files: dict[str, bytes]) -> None:
    """Write a build's files into this node's cache where they are missing (same keys)."""
    for relative, data in files.items():
        path = cache.root / relative
        if not path.exists():
            write_atomic(path, data)


#: TensorFlow's thread pools in a build task's worker: the one CPU the task holds. Two builds
#: on a 2-core node then train side by side instead of four pools fighting for two cores (and
#: a small model trains no slower on one thread). Set by the user, they are left alone.
BUILD_THREADS = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}


def build(job: Job, plan: BuildPlan) -> dict[str, Any]:
    """Build (or find) one artifact: its facts and files, or the error that stopped it."""
    started = time.time()
    for name, value in BUILD_THREADS.items():  # a Ray worker runs one task at a time
        os.environ.setdefault(name, value)
    work = node_work(job)
    result: dict[str, Any] = {}
    try:
        artifact = work.artifact(plan)
    except CellFailure as e:
        result["error"] = {"kind": e.kind, "message": str(e)}
    except (OSError, ValueError) as e:
        result["error"] = {"kind": "artifact", "message": str(e)}
    else:
        result.update(facts=artifact.facts, kind=artifact.kind, sha256=artifact.sha256,
                      metrics=artifact.metrics, files=_files(work.cache, plan))
    result["phase"] = phase("build", started, artifact_key=plan.artifact_key)
    return result


def _stamped(outcome: Outcome, phases: list[Phase]) -> Outcome:
    return replace(outcome, host=node_host(), phases=phases)


def _artifact(work: CellWork, plan: BuildPlan, built: dict[str, Any]) -> Artifact:
    """The build's artifact on this node (its files landed); hash and size metrics as the
    build task found them, not worked out again for every cell."""
    land(work.cache, built["files"])
    path = work.cache.artifact(plan.artifact_key, plan.suffix)
    return Artifact(path, path.read_bytes(), built["sha256"], built["facts"], built["metrics"],
                    built["kind"])


def run_cell(job: Job, cell: Cell, plan: BuildPlan, built: dict[str, Any],
             board: str | None = None) -> Outcome:
    """A whole cell (both phases) on this node: boards, estimates, anything not host-timed."""
    started = time.time()
    work = node_work(job, board)
    outcome = work.run(cell, plan, _artifact(work, plan, built))
    return _stamped(outcome, [built["phase"], phase("cell", started, board=board)])


def evaluate_cell(job: Job, cell: Cell, plan: BuildPlan,
                  built: dict[str, Any]) -> tuple[Evaluated | Outcome, list[Phase]]:
    """The evaluate half of a host-timed cell; its measure half runs alone on this node."""
    started = time.time()
    work = node_work(job)
    step = work.evaluate(cell, plan, _artifact(work, plan, built))
    phases = [built["phase"], phase("evaluate", started)]
    return (_stamped(step, phases) if isinstance(step, Outcome) else step), phases


def measure_cell(job: Job, step: Evaluated, phases: list[Phase]) -> Outcome:
    """The measure half of a host-timed cell, holding its node's whole quiet share."""
    started = time.time()
    outcome = node_work(job).measure(step)
    return _stamped(outcome, [*phases, phase("measure", started, quiet=True)])
