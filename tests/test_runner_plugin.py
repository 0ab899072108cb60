"""The runner seam: a runner from outside ``bench/``, installed through the ``edgebench.runners``
entry point group, serves a connection kind that a device file names, with its own options."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

RUNNER_MODULE = '''
"""A third-party runner: latency from its connection's option, arena from the file size."""
from pydantic import BaseModel, ConfigDict, Field

from bench.results.metrics import metric
from bench.errors import PositiveFloat
from bench.runners.base import Runner


class EchoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    latency_ms: PositiveFloat = 1.0
    label: str = Field("echo")


def evaluate(request):
    return {"arena_used": metric("arena_used", request.artifact.stat().st_size, "measured")}


def measure(request):
    opts = EchoOptions.model_validate(request.options)
    return {"latency_p50": metric("latency_p50", opts.latency_ms, "measured")}


ECHO = Runner(name="echo", evaluate="echo_runner:evaluate", measure="echo_runner:measure",
              options=EchoOptions, provenance=lambda device, options: {"echo": options},
              description="a test runner from outside bench/")
'''


def install_distribution(site: Path) -> None:
    """A minimal installed distribution: the module and a .dist-info with an entry point."""
    site.mkdir()
    (site / "echo_runner.py").write_text(RUNNER_MODULE)
    info = site / "echo_runner-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-runner\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[edgebench.runners]\necho = echo_runner:ECHO\n")


def edgebench(cwd: Path, site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def write_device(folder: Path, connection: dict) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "echo-board.yaml").write_text(yaml.safe_dump({
        "id": "echo-board", "core": "cortex-m4f", "clock_mhz": 80, "runtime": "other",
        "memory": {"flash_kb": 1024, "ram_kb": 256}, "connection": connection}))


def test_a_runner_from_an_entry_point_serves_its_connection_kind(tmp_path: Path,
                                                                 tiny_tflite: Path) -> None:
    site = tmp_path / "site"
    install_distribution(site)
    write_device(tmp_path / "devices", {"kind": "echo", "latency_ms": 2.5, "label": "x"})
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump({
        "name": "plugin", "models": [{"id": "tiny", "path": str(tiny_tflite)}],
        "devices": ["echo-board"], "settings": {"repeats": 2, "warmup": 0}}))

    out = edgebench(tmp_path, site, "run", "suite.yaml", "-q", "--results", "results")
    assert out.returncode == 0, out.stderr
    out = edgebench(tmp_path, site, "results", "--format", "json", "--results", "results")
    (record,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert record["status"] == "ok", record["error"]
    assert record["runner"] == "echo"
    assert record["metrics"]["latency_p50"]["value"] == 2.5
    assert record["metrics"]["arena_used"]["value"] == tiny_tflite.stat().st_size
    assert record["details"]["echo"] == {"latency_ms": 2.5, "label": "x"}


def test_a_wrong_option_of_a_plugin_runner_names_the_field(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_distribution(site)
    kinds = edgebench(tmp_path, site, "devices", "kinds").stdout
    assert "echo      echo" in kinds and "latency_ms=1.0 label=echo" in kinds
    write_device(tmp_path / "devices", {"kind": "echo", "latncy_ms": 2.5})
    out = edgebench(tmp_path, site, "devices", "validate", "devices/echo-board.yaml")
    assert out.returncode != 0
    assert "connection.latncy_ms" in out.stdout + out.stderr
    assert "did you mean 'latency_ms'?" in out.stdout + out.stderr

    write_device(tmp_path / "devices", {"kind": "echo", "latency_ms": -1})
    out = edgebench(tmp_path, site, "devices", "validate", "devices/echo-board.yaml")
    assert out.returncode != 0
    assert "connection.latency_ms" in out.stdout + out.stderr
    assert "positive number" in out.stdout + out.stderr


def test_without_the_distribution_the_kind_is_unknown(tmp_path: Path) -> None:
    write_device(tmp_path / "devices", {"kind": "echo"})
    out = edgebench(tmp_path, tmp_path / "nothing", "devices", "validate",
                    "devices/echo-board.yaml")
    assert out.returncode != 0
    assert textwrap.dedent("connection.kind: unknown connection kind 'echo'") in (
        out.stdout + out.stderr)
