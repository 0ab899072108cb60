"""Big stores: 100,000 realistic records, and what reading them costs.

Writes a store of two runs of one sweep (50,000 cells each, ~2.9 KB a record, as ``edgebench
run`` writes them: estimated and measured cells, failures, checks, timing summaries, details and
provenance), then times each reader in a fresh process and prints its wall time and peak memory
(the child's maximum resident set): ``edgebench show`` of the latest run, ``edgebench results
--all`` (CSV), ``edgebench compare`` of the two runs and the leaderboard's
:func:`leaderboard.data.load_frame`. Each is run twice: first with no index (it is built from
``records.jsonl``), then with the index in place. ``--plain`` also times the readers with the
index turned off (``EDGEBENCH_NO_INDEX=1``: every line parsed), ``--before DIR`` with the
edgebench checked out in DIR (e.g. a worktree of the version before the index; both slow).

    python benchmarks/big_store.py [--records 100000] [--plain] [--before DIR] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.results.metrics import metric
from bench.results.record import ConstraintResult, Record
from bench.results.store import RECORDS, Store

MODELS = [f"model{i:03d}" for i in range(125)]
VARIANTS = ["fp32", "int8", "int8_pc", "fp16", "int16x8"]
DEVICES = [f"board{i:02d}" for i in range(80)]
PROVENANCE = {"versions": {"tensorflow": "2.16.2", "ai-edge-litert": "1.2.0", "numpy": "1.26.4",
                           "tflite-micro": "2025.03.11", "ray": "2.40.0"},
              "host": {"node": "bench-host-01", "system": "Linux", "release": "6.8.0-45-generic",
                       "machine": "x86_64", "python": "3.11.10", "cpus": 16,
                       "cpu": "AMD Ryzen 9 7950X 16-Core Processor"},
              "machine": {"cpu_model": "AMD Ryzen 9 7950X 16-Core Processor", "cores": 16,
                          "memory_gb": 64, "governor": "performance", "turbo": False,
                          "kernel": "6.8.0-45-generic"},
              "git_commit": "3f1c9a2b7d4e5f60718293a4b5c6d7e8f9012345",
              "edgebench": "0.9.0"}


def record(suite: str, run_id: str, i: int, shift: float) -> Record:
    """The ``i``-th cell of the sweep: a realistic mix of estimated, measured and failed cells."""
    model, variant, device = (MODELS[i // 400 % len(MODELS)], VARIANTS[i // 80 % len(VARIANTS)],
                              DEVICES[i % len(DEVICES)])
    cell_id = f"{model}/{variant}@{device}"
    estimated = i % 4 != 0
    runner = "estimate" if estimated else "litert"
    size = 20_000 + (i * 7919) % 400_000
    if i % 97 == 0:
        return Record(suite, run_id, cell_id, model, variant, device, runner, "failed",
                      error={"kind": "unsupported", "message": "op CUMSUM is not supported by "
                             "TFLite Micro 2025.03.11 (needed by node 17); pick another "
                             "variant or runner"},
                      details={"runner": runner, "build": {"ops": ["CONV_2D", "CUMSUM"]}},
                      provenance=PROVENANCE)
    latency = (1 + (i * 31) % 900) * 0.37 * shift
    method = "estimated" if estimated else "measured"
    metrics = {"model_size": metric("model_size", size, "measured"),
               "model_size_gzip": metric("model_size_gzip", size * 0.71, "measured"),
               "arena_used": metric("arena_used", size * 0.4, "estimated" if estimated
                                    else "tflm"),
               "latency_p50": metric("latency_p50", latency, method, interval=(
                   latency * 0.8, latency * 1.3) if estimated else None),
               "accuracy": metric("accuracy", 0.7 + (i % 29) / 100, "measured")}
    if not estimated:
        metrics |= {"latency_mean": metric("latency_mean", latency * 1.01, "measured"),
                    "latency_std": metric("latency_std", latency * 0.02, "measured"),
                    "latency_n": metric("latency_n", 200, "measured", unit="")}
    if variant != "fp32":
        metrics["accuracy_delta"] = metric("accuracy_delta", -(i % 5) / 1000, "measured")
    details = {"runner": runner, "evaluation_cached": bool(i % 3),
               "build": {"converter": "tf.lite.TFLiteConverter", "optimizations": ["DEFAULT"],
                         "representative_samples": 200, "ops": ["CONV_2D", "DEPTHWISE_CONV_2D",
                                                                "FULLY_CONNECTED", "SOFTMAX"],
                         "tensors": 41, "subgraphs": 1},
               "dataset": {"name": "speech_commands", "split": "validation", "samples": 1000,
                           "sha256": "9b1f2d3c4a5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70"
                                     "8192a3b4c5d6e7f8"}}
    details["io"] = {"inputs": [{"name": "serving_default_input_1:0", "shape": [1, 49, 10, 1],
                                 "dtype": "int8", "quantization": [0.10196078568696976, -128]}],
                     "outputs": [{"name": "StatefulPartitionedCall:0", "shape": [1, 12],
                                  "dtype": "int8", "quantization": [0.00390625, -128]}]}
    details["options"] = {"threads": 1, "warmup": 10, "repeats": 200, "processes": 3,
                          "seed": 1234, "batch_size": 1, "samples": 1000, "timeout_s": 600}
    details["tflite"] = {"sha256": f"{i * 40503 % 2**64:064x}", "operators": 14, "tensors": 41,
                         "buffers": 29, "bytes": size, "arena_requested": 131072,
                         "arena_head": int(size * 0.3), "arena_tail": int(size * 0.1)}
    if estimated:
        details["estimate"] = {"table": "cortex-m4f-cmsis-nn", "fitted": "2026-10-02",
                               "layers": 14, "interval": "80 % (leave-one-board-out residuals)"}
        if i % 13 == 0:
            details["warnings"] = ["op SQUARED_DIFFERENCE has no fitted cost; charged as ADD"]
    else:
        details["timing"] = {"processes": 3, "medians_ms": [latency, latency * 1.01,
                                                            latency * 0.99], "warmup": 10}
        if i % 11 == 0:
            details["warnings"] = ["unstable timing: process medians differ by 7.2 %"]
    constraints = {"flash_kb": ConstraintResult("model_size", "≤ 512", size / 1024,
                                                size / 1024 <= 512),
                   "ram_kb": ConstraintResult("arena_used", "≤ 128", size * 0.4 / 1024,
                                              size * 0.4 / 1024 <= 128)}
    return Record(suite, run_id, cell_id, model, variant, device, runner, "ok",
                  artifact_sha256=f"{i * 2654435761 % 2**64:064x}", metrics=metrics,
                  constraints=constraints, details=details,
                  provenance={**PROVENANCE, "started": f"2026-12-01T10:{i // 60 % 60:02d}:"
                              f"{i % 60:02d}Z", "ended": f"2026-12-01T10:{i // 60 % 60:02d}:"
                              f"{i % 60:02d}Z", "phases": {"build_s": 0.41, "evaluate_s": 2.7,
                                                           "time_s": 1.9}})


def write_store(root: Path, n: int) -> list[str]:
    """``n`` records in two runs of one sweep (the second 3 % slower); their ``suite/run_id``."""
    store = Store(root)
    names = []
    for k, shift in enumerate((1.0, 1.03)):
        run = store.create("sweep", {"reference_variant": "fp32"},
                           run_id=f"20261201T10000{k}Z-b1g{k}")
        with open(run.records_path, "ab") as f:  # one write per 1,000 lines (no fsync each)
            batch = []
            for i in range(n // 2):
                rec = record(run.suite, run.run_id, i, shift)
                batch.append(json.dumps(rec.to_json(), ensure_ascii=False, default=str,
                                        allow_nan=False) + "\n")
                if len(batch) == 1000:
                    f.write("".join(batch).encode())
                    batch = []
            f.write("".join(batch).encode())
        run.release()
        names.append(f"{run.suite}/{run.run_id}")
    return names


def _child(what: str, root: str, a: str, b: str) -> None:
    """Run one reader in this (fresh) process; print its wall and CPU time and peak memory."""
    t0 = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    if what == "leaderboard load":
        from leaderboard import data

        df = data.load_frame(root)
        out = f"{len(df)} rows"
    else:
        from bench.cli import main

        argv = {"show": ["show", b], "results CSV": ["results", "--all"],
                "compare": ["compare", a, b]}[what]
        with open(os.devnull, "w") as sink:
            stdout, sys.stdout = sys.stdout, sink
            try:
                main([*argv, "--results", root])
            finally:
                sys.stdout = stdout
        out = ""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall": time.perf_counter() - t0, "out": out,
                      "cpu": usage.ru_utime + usage.ru_stime - cpu0,
                      "peak_mb": usage.ru_maxrss / 1024}))


def measure(what: str, root: Path, a: str, b: str, plain: bool,
            code: Path | None = None) -> tuple[float, float, float]:
    """Wall and CPU time (s; on a busy machine the CPU time is the steadier figure) and peak
    resident memory (MB) of one reader in a fresh process (``code``: with the edgebench found
    there instead)."""
    env = {**os.environ, **({"EDGEBENCH_NO_INDEX": "1"} if plain else {})}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    done = subprocess.run([sys.executable, __file__, "--child", what, str(root), a, b],
                          env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{what} failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return figures["wall"], figures["cpu"], figures["peak_mb"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--plain", action="store_true", help="also time the readers without the index")
    p.add_argument("--keep", type=Path, help="write the store here and keep it")
    p.add_argument("--before", type=Path, metavar="DIR",
                   help="also time the readers with the edgebench checked out in DIR (a version "
                        "from before the index)")
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _child(*args.child)
        return
    from bench.results.index import INDEX

    root = args.keep or Path(tempfile.mkdtemp(prefix="big-store-"))
    try:
        t0 = time.perf_counter()
        runs = Store(root).runs()
        if len(runs) == 2:  # --keep DIR of an earlier call: reuse its store
            a, b = (f"{r.suite}/{r.run_id}" for r in runs)
            print("big store: reusing", root)
        else:
            a, b = write_store(root, args.records)
        size = sum(p.stat().st_size for p in root.glob(f"*/*/{RECORDS}"))
        lines = sum(p.read_bytes().count(b"\n") for p in root.glob(f"*/*/{RECORDS}"))
        print(f"big store: {lines:,} records in 2 runs ({size / 1e6:.0f} MB of records.jsonl, "
              f"{size / lines / 1e3:.1f} KB a record), ready in {time.perf_counter() - t0:.1f} s")
        readers = ["show", "results CSV", "compare", "leaderboard load"]
        modes = (["before"] if args.before else []) + (["plain"] if args.plain else [])
        for mode in [*modes, "index built", "indexed"]:
            for what in readers:
                if mode == "index built":  # each reader builds the indexes from scratch
                    for path in root.glob(f"*/*/{INDEX}"):
                        path.unlink()
                wall, cpu, peak = measure(what, root, a, b, plain=mode == "plain",
                                          code=args.before if mode == "before" else None)
                print(f"  {mode:<12} {what:<17} {wall:7.2f} s wall {cpu:7.2f} s CPU "
                      f"{peak:6.0f} MB peak", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
