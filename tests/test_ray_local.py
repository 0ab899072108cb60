"""``edgebench run SUITE --executor ray`` with no address: a Ray instance on this machine for the
run (loopback only: ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``), started and stopped by the run."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.results.store import Store
from tests.conftest import ROOT

pytest.importorskip("ray")


def test_a_suite_runs_on_local_ray_and_a_failed_build_releases_the_next(
        tmp_path: Path, tiny_tflite: Path) -> None:
    """The reference variant ``q`` is built first and fails (a .tflite cannot be re-quantized);
    ``fp32``, which waited for it (same model), is then built and runs."""
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "local-ray", "models": [{"id": "tiny", "path": str(tiny_tflite)}],
        "variants": [{"id": "q", "steps": [{"quantize": {"mode": "fp16"}}]}, {"id": "fp32"}],
        "devices": ["host-litert", "nucleo-l4r5zi"],
        "settings": {"reference_variant": "q", "repeats": 3, "warmup": 1, "processes": 1}}))
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_USAGE_STATS_ENABLED": "0", "EDGEBENCH_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "run", str(suite), "--executor", "ray", "--results",
         str(tmp_path / "results"), "--devices-dir", str(ROOT / "devices"), "-q"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert done.returncode == 1, done.stderr  # the failed build's cells are failures
    (run,) = Store(tmp_path / "results").runs()
    records = {r.cell_id: r for r in run.records()}
    assert sorted(records) == sorted(run.manifest()["cells"]) and len(records) == 4
    for device in ("host-litert", "nucleo-l4r5zi"):
        failed, ok = records[f"tiny/q@{device}"], records[f"tiny/fp32@{device}"]
        assert failed.status == "failed" and failed.error["kind"] == "build", failed.error
        assert "already a .tflite" in failed.error["message"]
        assert ok.status == "ok", ok.error
        assert ok.provenance["host"]["ray_node"] == platform.node()
        assert [p["phase"] for p in ok.provenance["phases"]][0] == "build"
    assert "measure" in [p["phase"] for p in records["tiny/fp32@host-litert"].provenance["phases"]]


def test_builds_go_before_cells_that_would_wait_for_a_cpu(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On two CPUs, four builds: no cell takes a CPU before the last build has one (Ray has no
    priorities and, left alone, starts a cell beside the third build while the fourth waits;
    the executor holds such cells back while a build waits for a CPU)."""
    from bench.artifacts.cache import Cache
    from bench.run.executors.ray_executor import RayExecutor
    from bench.run.session import run_suite
    from bench.suite.spec import load_suite

    suite = tmp_path / "builds.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "builds-first",
        "models": [{"id": f"mlp{seed}", "builder": "har_mlp", "params": {"hidden": [8]},
                    "dataset": {"name": "har_synthetic",
                                "params": {"features": 6, "classes": 3, "samples": 150}},
                    "train": {"epochs": 1, "seed": seed}} for seed in range(4)],
        "variants": [{"id": "fp32"}], "devices": ["nucleo-l4r5zi"]}))
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    records = run_suite(load_suite(suite), tmp_path / "results", cache=Cache(tmp_path / "c"),
                        executor=RayExecutor(num_cpus=2)).records()
    assert len(records) == 4 and all(r.status == "ok" for r in records), records
    phases = [p for r in records for p in r.provenance["phases"]]
    builds = [p for p in phases if p["phase"] == "build"]
    cells = [p for p in phases if p["phase"] != "build"]
    assert len(builds) == 4 and cells
    assert max(p["started"] for p in builds) <= min(p["started"] for p in cells), phases
