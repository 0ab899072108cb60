"""The ray executor on a real Ray cluster of three nodes on this machine.

A head node (``ray.cluster_utils.Cluster``, in this process) and two ``edgebench agent``
processes, each advertising one virtual board (``edgebench board serve`` on a pty). Traffic stays
on loopback: with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (set by conftest, before Ray is
imported) Ray gives every node 127.0.0.1, which the tests check. The cluster is shared by the
tests of this module.
"""

from __future__ import annotations

import hashlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.artifacts.cache import Cache
from bench.results.record import Record
from bench.results.store import Store
from bench.run.executors.ray_executor import RayExecutor
from bench.run.executors.resources import QUIET, QUIET_UNITS
from bench.run.session import run_suite
from bench.suite.spec import load_suite
from tests.conftest import ROOT

ray = pytest.importorskip("ray")

DEVICES = ROOT / "devices"
BOARD = yaml.safe_load((DEVICES / "mcu-256kb-80mhz.yaml").read_text())
HEALTH = {"health_check_period_ms": 500, "health_check_failure_threshold": 3,
          "health_check_timeout_ms": 500}  # a killed node is declared dead in seconds


def child_env(cache: Path) -> dict[str, str]:
    return {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "RAY_USAGE_STATS_ENABLED": "0", "EDGEBENCH_CACHE": str(cache)}


def start_boards(model: Path, n: int) -> list[tuple[subprocess.Popen[str], str]]:
    """``n`` × ``edgebench board serve`` on a pty, started together; each with its port."""
    procs = [subprocess.Popen(
        [sys.executable, "-m", "bench", "board", "serve", str(model), "--link", "pty",
         "--clock", "host"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        for _ in range(n)]
    return [(proc, first_line(proc, "port: ", 60).split(" ", 1)[1].strip()) for proc in procs]


def first_line(proc: subprocess.Popen[str], start: str, timeout: float) -> str:
    """The first line ``proc`` prints, which must start with ``start``."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith(start):
        proc.kill()
        raise AssertionError(f"{proc.args[3]} did not start: {line!r} {proc.stderr.read()}")
    return line


def write_board(folder: Path, device_id: str, port: str) -> None:
    """A board's device file: the serial runner on ``port``, two timed windows (the window
    length comes from each suite's ``min_window_s``)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {**BOARD, "id": device_id,
            "connection": {"kind": "serial", "port": port, "timeout_s": 10.0, "windows": 2}}
    (folder / f"{device_id}.yaml").write_text(yaml.safe_dump(data))


def start_agent(address: str, name: str, devices: Path, cache: Path) -> subprocess.Popen[str]:
    """``edgebench agent`` joining ``address`` (1 CPU); wait for it with :func:`first_line`."""
    return subprocess.Popen(
        [sys.executable, "-m", "bench", "agent", "--address", address, "--node-name", name,
         "--num-cpus", "1", "--devices-dir", str(devices), "--cache", str(cache)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=child_env(cache))


def stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def alive_nodes() -> dict[str, dict[str, Any]]:
    return {n["NodeName"]: n for n in ray.nodes() if n["Alive"]}


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@dataclass
class Lab:
    address: str
    root: Path
    devices: Path  # the driver's device files: every board
    cluster: Any
    model: Path
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def suite(self, name: str, devices: list[str], **settings: Any) -> Path:
        path = self.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump({
            "name": name,
            "models": [{"id": "tiny", "path": str(self.model),
                        "dataset": {"name": "har_synthetic",
                                    "params": {"features": 4, "classes": 3, "samples": 120}}}],
            "variants": [{"id": "copy"}, {"id": "fp32"}], "devices": devices,
            "settings": {"repeats": 3, "warmup": 1, "processes": 1, "min_window_s": 0.05,
                         **settings}}))
        return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, tiny_tflite: Path) -> Iterator[Lab]:
    """Head node (2 CPUs) + agents ``lab-a`` and ``lab-b`` (1 CPU, one virtual board each)."""
    from ray.cluster_utils import Cluster

    from bench.run.executors.network import require_token

    require_token()  # as `edgebench agent --head` does: the agents present the token they find
    root = tmp_path_factory.mktemp("lab")
    procs: list[subprocess.Popen[str]] = []
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "resources": {QUIET: QUIET_UNITS}, "node_name": "head",
        "env_vars": {"EDGEBENCH_CACHE": str(root / "cache-head")}, "_system_config": HEALTH})
    try:
        boards = start_boards(tiny_tflite, 2)
        procs += [proc for proc, _ in boards]
        for name, (_, port) in zip("ab", boards, strict=True):  # one at a time: a loaded
            write_board(root / "devices", f"board-{name}", port)  # machine starts a raylet
            write_board(root / f"devices-{name}", f"board-{name}", port)  # slowly
            procs.append(start_agent(cluster.address, f"lab-{name}", root / f"devices-{name}",
                                     root / f"cache-{name}"))
            first_line(procs[-1], f"node lab-{name} ", 120)
        ray.init(address=cluster.address, log_to_driver=False)
        wait_for(lambda: len(alive_nodes()) == 3, 60, "three nodes")
        yield Lab(cluster.address, root, root / "devices", cluster, tiny_tflite, procs)
    finally:
        ray.shutdown()
        stop(procs)
        cluster.shutdown()


def comparable(record: Record) -> dict[str, Any]:
    """A record without what differs by where and when it ran: provenance, run id, timed
    figures and their details, and whether a cache already held the artifact or evaluation."""
    data = record.to_json()
    for name in ("provenance", "run_id"):
        data.pop(name)
    data["metrics"] = {k: v for k, v in data["metrics"].items()
                       if not k.startswith(("latency", "energy", "inferences"))}
    for timing in ("timing", "warnings", "samples", "evaluation_cached"):
        data["details"].pop(timing, None)
    data["details"]["build"].pop("cached", None)
    return data


@pytest.fixture(scope="module")
def both_runs(lab: Lab, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[list[Record], list[Record], list[dict[str, int]]]:
    """One suite (two variants × two boards and two host devices) run by the local executor,
    then by the ray executor on the cluster; each with a fresh cache. Also what the ray
    executor reported running on each node as it went."""
    suite = load_suite(lab.suite("farm", ["board-a", "board-b", "host-litert",
                                          "tflm-reference"]))
    out = tmp_path_factory.mktemp("runs")
    running: list[dict[str, int]] = []
    runs = [run_suite(suite, out / executor.name, cache=Cache(out / f"cache-{executor.name}"),
                      devices_dirs=[lab.devices, DEVICES], executor=executor)
            for executor in (registry_local(), RayExecutor(on_running=running.append))]
    return runs[0].records(), runs[1].records(), running


def registry_local() -> Any:
    from bench import registry

    return registry.executors.get("local")


def test_the_cluster_is_three_nodes_on_loopback(lab: Lab) -> None:
    nodes = alive_nodes()
    assert sorted(nodes) == ["head", "lab-a", "lab-b"]
    assert {n["NodeManagerAddress"] for n in nodes.values()} == {"127.0.0.1"}
    assert nodes["lab-a"]["Resources"]["board:board-a"] == 1
    assert "board:board-a" not in nodes["lab-b"]["Resources"]
    assert all(n["Resources"][QUIET] == QUIET_UNITS for n in nodes.values())


def test_board_cells_run_on_the_node_that_owns_the_board(both_runs: tuple, lab: Lab) -> None:
    _, records, _ = both_runs
    assert len(records) == 8 and len({r.cell_id for r in records}) == 8
    for record in records:
        assert record.status == "ok", (record.cell_id, record.error)
        if record.device.startswith("board-"):
            assert record.provenance["host"]["ray_node"] == f"lab-{record.device[-1]}"
    assert {r.provenance["host"]["ray_node"] for r in records} >= {"lab-a", "lab-b"}
    # the artifacts were built on the head and landed in each agent's own cache, same bytes
    shas = {r.artifact_sha256 for r in records}
    for name in ("a", "b"):
        landed = {hashlib.sha256(f.read_bytes()).hexdigest()
                  for f in (lab.root / f"cache-{name}" / "artifacts").glob("*.tflite")}
        assert landed == shas


def test_local_and_ray_records_are_the_same_apart_from_timing_and_provenance(
        both_runs: tuple) -> None:
    local, ray_records, _ = both_runs
    assert [r.cell_id for r in local] != [] and len(local) == len(ray_records)
    def by_cell(records: list[Record]) -> list[dict[str, Any]]:
        return sorted(map(comparable, records), key=lambda d: d["cell_id"])

    for here, there in zip(by_cell(local), by_cell(ray_records), strict=True):
        assert here.keys() == there.keys()
        differ = {k: (here[k], there[k]) for k in here if here[k] != there[k]}
        if "details" in differ:
            a, b = differ.pop("details")
            differ.update({f"details.{k}": (a.get(k), b.get(k)) for k in a.keys() | b.keys()
                           if a.get(k) != b.get(k)})
        assert not differ, (here["cell_id"], differ)
    assert all("phases" not in r.provenance for r in local)


def test_no_latency_measurement_shared_its_node_with_another_task(both_runs: tuple) -> None:
    _, records, _ = both_runs
    phases = {(p["phase"], p["node_id"], p["started"], p["ended"]): p
              for r in records for p in r.provenance["phases"] if "node_id" in p}
    measures = [p for p in phases.values() if p["phase"] == "measure"]
    assert len(measures) == 4 and all(p["quiet"] for p in measures)  # the host-timed cells
    assert len({p["node_id"] for p in phases.values()}) >= 2
    for m in measures:
        for other in phases.values():
            if other is not m and other["node_id"] == m["node_id"]:
                apart = other["ended"] <= m["started"] or other["started"] >= m["ended"]
                assert apart, (m, other)


def test_a_lost_node_fails_its_board_cells_and_the_run_completes(
        lab: Lab, tiny_tflite: Path, tmp_path: Path) -> None:
    """``lab-c`` (a third agent, with board-c) is killed while a board-c cell runs; board-z
    is attached to no node at all."""
    ((board, port),) = start_boards(tiny_tflite, 1)
    write_board(lab.devices, "board-c", port)
    write_board(tmp_path / "devices-c", "board-c", port)
    write_board(lab.devices, "board-z", str(tmp_path / "no-such-port"))
    victim = start_agent(lab.address, "lab-c", tmp_path / "devices-c", tmp_path / "cache-c")
    try:
        first_line(victim, "node lab-c ", 120)
        wait_for(lambda: "lab-c" in alive_nodes(), 60, "lab-c")
        suite = load_suite(lab.suite("loss", ["board-c", "host-litert", "board-z"],
                                     min_window_s=3.0))
        killed: list[float] = []

        def kill_when_board_c_is_busy() -> None:
            from ray._private.state import available_resources_per_node

            node = alive_nodes()["lab-c"]["NodeID"]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                free = available_resources_per_node()  # a resource all in use is left out
                if node in free and free[node].get("board:board-c", 0) == 0:
                    victim.send_signal(signal.SIGKILL)
                    killed.append(time.monotonic())
                    return
                time.sleep(0.1)

        killer = threading.Thread(target=kill_when_board_c_is_busy)
        killer.start()
        run = run_suite(suite, tmp_path / "results", devices_dirs=[lab.devices, DEVICES],
                        executor=RayExecutor())
        killer.join()
    finally:
        stop([victim, board])
    assert killed, "board-c never got busy"
    records = run.records()
    assert sorted(r.cell_id for r in records) == sorted(run.manifest()["cells"])  # no loss,
    assert len({r.cell_id for r in records}) == len(records) == 6  # no duplicate
    by_device: dict[str, list[Record]] = {}
    for r in records:
        by_device.setdefault(r.device, []).append(r)
    for r in by_device["host-litert"]:
        assert r.status == "ok", r.error
        if any(p["phase"] == "lost" for p in r.provenance["phases"]):  # it ran on lab-c
            assert r.provenance["host"]["ray_node"] != "lab-c"
    for r in by_device["board-c"]:
        assert r.status == "failed" and r.error["kind"] == "lost", r.error
        assert r.error["message"].startswith("node lost"), r.error
    for r in by_device["board-z"]:
        assert r.status == "failed" and r.error["kind"] == "unavailable", r.error
        assert "board:board-z" in r.error["message"]


def test_ctrl_c_cancels_the_run_and_resume_completes_it(lab: Lab, tmp_path: Path) -> None:
    suite = lab.suite("interrupt", ["board-a", "board-b", "host-litert"], min_window_s=2.0)
    results = tmp_path / "results"
    command = [sys.executable, "-m", "bench", "run", str(suite), "--executor", "ray",
               "--address", lab.address, "--results", str(results), "--devices-dir",
               str(lab.devices), "--devices-dir", str(DEVICES), "-q"]
    env = child_env(tmp_path / "cache")
    # A shell's background job starts with SIGINT ignored, and a child inherits that (its
    # Ctrl-C would then be lost); it never inherits a handler: exec resets it to the default.
    ignored = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=tmp_path, env=env)
    finally:
        signal.signal(signal.SIGINT, ignored)
    try:
        wait_for(lambda: proc.poll() is not None or any(
            p.stat().st_size for p in results.glob("*/*/records.jsonl")), 180, "a first record")
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "--resume" in err
    (run,) = Store(results).runs()
    first = [r.cell_id for r in run.records()]
    assert 0 < len(first) < 6
    # nothing of the run is left holding a board
    wait_for(lambda: ray.available_resources().get("board:board-a") == 1
             and ray.available_resources().get("board:board-b") == 1, 30, "boards released")

    done = subprocess.run([*command, "--resume"], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    records = run.records()
    assert [r.cell_id for r in records][:len(first)] == first
    assert sorted(r.cell_id for r in records) == sorted(run.manifest()["cells"])
    assert len({r.cell_id for r in records}) == 6
    assert all(r.status == "ok" for r in records), [r.error for r in records]


def test_progress_names_the_nodes_and_what_runs_there(both_runs: tuple) -> None:
    _, _, running = both_runs
    assert running and all(set(r) == {"head", "lab-a", "lab-b"} for r in running)
    assert max(sum(r.values()) for r in running) >= 1
