"""Nothing listens beyond 127.0.0.1 unless asked: the listening sockets of each long-running
command (``run --executor ray``, ``agent --head``, ``leaderboard``, ``board serve``), read from
``/proc`` while it runs, with Ray's own view (``ray.nodes()``) and its token authentication.

The commands run with Ray's defaults (no ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``, which the test
session sets for itself, no ``RAY_AUTH_MODE``): what a user gets."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.sockets import Listening, free_port, listening

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")

EDGEBENCH = [sys.executable, "-m", "bench"]


def user_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_AUTH_MODE", "RAY_ADDRESS")}
    return {**env, **extra}



def network_address() -> str | None:
    """This host's address on its network (not loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") else address


def first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if not line:
        proc.kill()
        raise AssertionError(f"{proc.args} printed nothing: {proc.stderr.read()[-3000:]}")
    return line


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def sample(proc: subprocess.Popen[str], seconds: float) -> set[Listening]:
    """Every socket ``proc``'s process tree listens on over ``seconds`` (or until it ends)."""
    seen: set[Listening] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        seen |= set(listening(proc.pid))
        time.sleep(0.3)
    return seen


def report(name: str, sockets: set[Listening]) -> None:
    """Print the list (``pytest -s`` shows it: the issue's socket list per command)."""
    print(f"\n{name}:")
    for s in sorted(sockets, key=lambda s: (s.port, s.pid)):
        print(f"  {s}")


# --- edgebench run --executor ray ---------------------------------------------------------

def test_a_run_on_local_ray_listens_on_loopback_only(tmp_path: Path, tiny_tflite: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "net", "models": [{"id": "tiny", "path": str(tiny_tflite)}],
        "variants": [{"id": "fp32"}, {"id": "copy"}], "devices": ["host-litert"],
        "settings": {"repeats": 3, "warmup": 1, "processes": 1}}))
    proc = subprocess.Popen([*EDGEBENCH, "run", str(suite), "--executor", "ray", "-q",
                             "--results", str(tmp_path / "results"), "--devices-dir",
                             str(ROOT / "devices")], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=user_env(), start_new_session=True)
    try:
        seen = sample(proc, 600)
        out, err = proc.communicate(timeout=120)
    finally:
        stop(proc)
    assert proc.returncode == 0, err[-3000:]
    report("edgebench run --executor ray", seen)
    commands = " ".join(s.command for s in seen)
    assert "gcs_server" in commands and "raylet" in commands  # Ray was seen listening
    assert all(s.loopback for s in seen), [str(s) for s in seen if not s.loopback]


def test_the_local_executor_keeps_ray_on_loopback_whatever_ray_defaults_to(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: Ray set to cluster mode (its Linux default) still gets 127.0.0.1 only, every
    node says so (``ray.nodes()``), and the instance uses token authentication."""
    import ray
    from ray._private import ray_constants

    from bench.run.executors.ray_executor import connected

    monkeypatch.delenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", raising=False)
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", True)
    with connected(None, 1, []):
        nodes = ray.nodes()
        sockets = listening(os.getpid())
        mode = os.environ.get("RAY_AUTH_MODE")
    assert {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}
    assert sockets and all(s.loopback for s in sockets), [str(s) for s in sockets]
    assert mode == "token"
    assert ray_constants.ENABLE_RAY_CLUSTER is True  # given back as it was


# --- edgebench agent ------------------------------------------------------------------------

@pytest.fixture
def head(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    proc = subprocess.Popen([*EDGEBENCH, "agent", "--head", "--port", str(port), "--num-cpus",
                             "1", "--node-name", "head", "--cache", str(tmp_path / "cache")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=user_env(), start_new_session=True)
    try:
        line = first_line(proc, 180)
        assert line.startswith(f"node head (127.0.0.1): head of a new cluster at "
                               f"127.0.0.1:{port}"), line
        yield proc, port
    finally:
        stop(proc)


#: A driver (edgebench's own connection) printing the cluster's live nodes and addresses.
NODES = ("import json, ray\n"
         "from bench.run.executors.ray_executor import connected\n"
         "with connected({address!r}, None, []):\n"
         "    print(json.dumps(sorted((n['NodeName'], n['NodeManagerAddress'])\n"
         "                            for n in ray.nodes() if n['Alive'])))\n")


def test_an_agent_head_listens_on_loopback_and_wants_the_token(
        head: tuple[subprocess.Popen[str], int], tmp_path: Path) -> None:
    proc, port = head
    seen = sample(proc, 3)
    report("edgebench agent --head", seen)
    assert any(s.port == port and "gcs_server" in s.command for s in seen)
    assert all(s.loopback for s in seen), [str(s) for s in seen if not s.loopback]
    # a second agent joins it (two nodes, both on loopback) ...
    joined = subprocess.Popen([*EDGEBENCH, "agent", "--address", f"127.0.0.1:{port}",
                               "--num-cpus", "1", "--node-name", "lab",
                               "--cache", str(tmp_path / "cache-lab")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=ROOT, env=user_env(), start_new_session=True)
    try:
        assert first_line(joined, 180).startswith(f"node lab (127.0.0.1): joined 127.0.0.1:{port}")
        joined_sockets = sample(joined, 2)
        assert joined_sockets and all(s.loopback for s in joined_sockets)
        # ... and a driver with the token sees both nodes on 127.0.0.1
        nodes = subprocess.run([sys.executable, "-c", NODES.format(address=f"127.0.0.1:{port}")],
                               capture_output=True, text=True, timeout=180, cwd=ROOT,
                               env=user_env())
        assert nodes.returncode == 0, nodes.stderr[-2000:]
        assert json.loads(nodes.stdout.strip().splitlines()[-1]) == [
            ["head", "127.0.0.1"], ["lab", "127.0.0.1"]]
    finally:
        stop(joined)
    # a driver without the token is refused
    anonymous = subprocess.run([sys.executable, "-c", NODES.format(address=f"127.0.0.1:{port}")],
                               capture_output=True, text=True, timeout=180, cwd=ROOT,
                               env=user_env(RAY_AUTH_MODE="disabled"))
    assert anonymous.returncode != 0
    assert "Unauthenticated" in anonymous.stderr, anonymous.stderr[-2000:]


def test_listen_exposes_the_head_and_says_what(tmp_path: Path) -> None:
    address = network_address()
    if address is None:
        pytest.skip("this host has no network address")
    port = free_port()
    proc = subprocess.Popen([*EDGEBENCH, "agent", "--head", "--port", str(port), "--num-cpus",
                             "1", "--listen", address, "--cache", str(tmp_path / "cache")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=user_env(), start_new_session=True)
    try:
        assert f"({address}): head of a new cluster at {address}:{port}" in first_line(proc, 180)
        seen = sample(proc, 2)
        report(f"edgebench agent --head --listen {address}", seen)
    finally:
        stop(proc)
        err = proc.stderr.read()
    assert any(not s.loopback for s in seen)  # asked for: reachable
    assert (f"warning: --listen {address}: Ray's control store (GCS, port {port}), this node's "
            "raylet and object manager, its runtime-env agent and its worker processes now "
            "accept connections from other hosts") in err
    assert "Token authentication is on" in err


def test_joining_a_head_elsewhere_needs_listen() -> None:
    out = subprocess.run([*EDGEBENCH, "agent", "--address", "198.51.100.7:6379"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, env=user_env())
    assert out.returncode == 2
    assert "say so with --listen ADDRESS" in out.stderr


# --- edgebench leaderboard, edgebench board serve ---------------------------------------------

def test_the_leaderboard_and_a_virtual_board_listen_on_loopback(tmp_path: Path,
                                                                 tiny_tflite: Path) -> None:
    (tmp_path / "results").mkdir()
    port = free_port()
    board_serve = subprocess.Popen([*EDGEBENCH, "board", "serve", str(tiny_tflite), "--link",
                                    "tcp"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, cwd=ROOT, start_new_session=True)
    leaderboard = subprocess.Popen([*EDGEBENCH, "leaderboard", "--results",
                                    str(tmp_path / "results"), "--port", str(port)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   cwd=tmp_path, start_new_session=True)
    try:
        assert first_line(board_serve, 120).startswith("port: socket://127.0.0.1:")
        board_sockets = sample(board_serve, 1)
        deadline, lb_sockets = time.monotonic() + 120, set()
        while not any(s.port == port for s in lb_sockets) and time.monotonic() < deadline:
            lb_sockets |= sample(leaderboard, 0.5)
    finally:
        stop(board_serve)
        stop(leaderboard)
    report("edgebench board serve --link tcp", board_sockets)
    report("edgebench leaderboard", lb_sockets)
    assert board_sockets and any(s.port == port for s in lb_sockets)
    for s in board_sockets | lb_sockets:
        assert s.loopback, str(s)
