"""The ray executor's figures on this machine. Prints them.

1. Build-heavy suite wall time, cold cache: six (then twelve) har_mlp builds (distinct trained
   models) whose cells are cheap estimates, ``edgebench run`` with the local executor vs
   ``--executor ray`` (Ray's start and stop included). Target: ray at least 1.6x faster on a
   2-core machine.
2. Dispatch overhead per cell: a warm suite of 50 estimate cells through Ray limited to one
   CPU (one cell at a time; Ray started beforehand): the run's wall time outside its tasks'
   own stamped time, over 50 (and, for reference, the difference to the local executor, which
   the load of a shared machine blurs). Target: at most 50 ms a cell.

Usage: python benchmarks/ray_executor.py [builds] [dispatch]   (default: both)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ESTIMATE_DEVICES = ["nucleo-l4r5zi", "nucleo-h7a3zi-q", "nucleo-u575zi-q", "ek-ra6m4",
                    "ek-ra8d1", "esp32-devkitc", "esp32-s3-devkitc-1", "raspberry-pi-pico",
                    "sparkfun-edge", "mcu-256kb-80mhz"]


def build_heavy_suite(path: Path, builds: int = 6) -> Path:
    """``builds`` MLPs (three sizes × seeds), each its own training and conversion; one
    estimate each."""
    models = [{"id": f"mlp{units}s{seed}", "builder": "har_mlp",
               "params": {"hidden": [units, units // 2]},
               "dataset": {"name": "har_synthetic", "params": {"features": 27, "classes": 5}},
               "train": {"epochs": 10, "batch_size": 64, "seed": seed}}
              for seed in range(-(-builds // 3)) for units in (32, 64, 128)][:builds]
    path.write_text(yaml.safe_dump({"name": "build-heavy", "models": models,
                                    "variants": [{"id": "fp32"}],
                                    "devices": ["nucleo-l4r5zi"]}))
    return path


def cheap_suite(path: Path, model: Path) -> Path:
    """50 estimate cells: one model file × five variants (one artifact) × ten boards."""
    path.write_text(yaml.safe_dump({
        "name": "dispatch", "models": [{"id": "m", "path": str(model)}],
        "variants": [{"id": f"v{i}"} for i in range(5)], "devices": ESTIMATE_DEVICES,
        "settings": {"reference_variant": "v0"}}))
    return path


def wall(command: list[str], cache: Path) -> float:
    env = {**os.environ, "EDGEBENCH_CACHE": str(cache), "RAY_USAGE_STATS_ENABLED": "0"}
    started = time.monotonic()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def builds(tmp: Path) -> None:
    """The issue's six builds, then twelve: Ray's start and stop (about 3.5 s here) weigh
    less the longer the sweep."""
    for count in (6, 12):
        suite = build_heavy_suite(tmp / f"build-heavy-{count}.yaml", count)
        run = [sys.executable, "-m", "bench", "run", str(suite), "--results", str(tmp / "r"),
               "-q"]
        local = wall(run, tmp / f"cache-local-{count}")
        ray = wall([*run, "--executor", "ray"], tmp / f"cache-ray-{count}")
        print(f"build-heavy suite ({count} builds), cold: local {local:.1f} s, ray {ray:.1f} s "
              f"(Ray's start and stop included): {local / ray:.2f}x (target >= 1.6x, "
              f"{os.cpu_count()} CPUs)")


def dispatch(tmp: Path) -> None:
    import ray

    from bench.artifacts.cache import Cache
    from bench.run.executors.ray_executor import RayExecutor
    from bench.run.executors.resources import node_resources
    from bench.run.session import run_suite
    from bench.suite.spec import load_suite

    model = tmp / "model.tflite"
    model.write_bytes(_tiny())
    suite = load_suite(cheap_suite(tmp / "dispatch.yaml", model))
    cache = Cache(tmp / "cache-dispatch")
    run_suite(suite, tmp / "warm", cache=cache)  # build and evaluations cached for both
    started = time.monotonic()
    run_suite(suite, tmp / "local", cache=cache)
    local = time.monotonic() - started
    started = time.monotonic()
    ray.init(address="local", num_cpus=1, resources=node_resources([]),
             include_dashboard=False, log_to_driver=False)
    init = time.monotonic() - started
    try:
        started = time.monotonic()
        records = run_suite(suite, tmp / "ray", cache=cache, executor=RayExecutor()).records()
        on_ray = time.monotonic() - started
    finally:
        ray.shutdown()
    assert len(records) == 50 and all(r.status == "ok" for r in records), records
    phases = {(p["phase"], p["started"]): p for r in records for p in r.provenance["phases"]}
    in_tasks = sum(p["ended"] - p["started"] for p in phases.values())
    outside = (on_ray - in_tasks) / 50 * 1000
    versus_local = (on_ray - local) / 50 * 1000
    print(f"dispatch, 50 estimate cells one at a time: local {local:.1f} s, ray {on_ray:.1f} s "
          f"(+ {init:.1f} s to start Ray); per cell, ray's wall time outside its tasks "
          f"{outside:.0f} ms, ray minus local {versus_local:+.0f} ms (target <= 50 ms)")


def _tiny() -> bytes:
    """A small Dense model's .tflite (4 → 8 → 3)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    fn = tf.function(lambda x: model(x)).get_concrete_function(tf.TensorSpec([1, 4], tf.float32))
    return tf.lite.TFLiteConverter.from_concrete_functions([fn], model).convert()


def main() -> None:
    chosen = sys.argv[1:] or ["builds", "dispatch"]
    with tempfile.TemporaryDirectory(prefix="edgebench-bench-ray-") as tmp:
        for name in chosen:
            {"builds": builds, "dispatch": dispatch}[name](Path(tmp))


if __name__ == "__main__":
    main()
