"""The estimator's honest error and interval coverage, and what one estimate costs.

1. nested leave-systems-out, leave-one-model-out and leave-each-release-out (the whole
   calibration procedure rerun on each training set): median and p90 absolute % error and the
   share of held-out results inside their 80 % interval, by source of doubt, next to the old
   figures and the non-nested ones; energy of held-out systems, its power priced as a user of
   that board would have it (its other systems' published power, else the shipped device
   file's datasheet figure, else its core's typical one), by where the power came from, and
   per held-out system split into how far its latency and its power were off;
2. per system;
3. models beyond the four MLPerf Tiny references (published latencies, sources cited in
   ``benchmarks/data/published_latencies.csv``), predicted by the procedure fitted on the
   four: never calibrated on;
4. the packaged table's estimates of the reference models with intervals, and the time of one
   ``estimate`` call (target: under 1 s).

Deterministic; a few minutes (``--quick`` skips the nested runs).
Usage: python benchmarks/estimator_error.py [--results CSV] [--models DIR] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from bench import textable
from bench.artifacts.cache import default_root
from bench.board.reference_models import REFERENCE_FILES
from bench.estimate.analysis import analyse
from bench.estimate.data import results_data
from bench.estimate.evaluate import device_datasheets, evaluate, render, render_systems
from bench.estimate.model import Target, estimate, load_coefficients

sys.path.insert(0, str(Path(__file__).parent))
SHARED = Path(__file__).resolve().parents[2] / "shared"
# (board in the CSV, core, clock MHz, runtime, release)
BOARDS = [("NUCLEO-L4R5ZI", "cortex-m4f", 120, "x-cube-ai", "9.0"),
          ("NUCLEO-L4R5ZI", "cortex-m4f", 120, "x-cube-ai", "7.1"),
          ("NUCLEO-L4R5ZI", "cortex-m4f", 120, "tflm", None),
          ("NUCLEO-H7A3ZI-Q", "cortex-m7", 280, "x-cube-ai", "9.0"),
          ("NUCLEO-U575ZI-Q", "cortex-m33", 160, "plumerai", "2023.05"),
          ("EK-RA8D1", "cortex-m85", 480, "tflm", None),
          ("NUCLEO-G0B1RE", "cortex-m0plus", 64, "bosch-hale", "1.0.175")]


def published(rows: pd.DataFrame, board: str, runtime: str, release: str | None,
              bench: str) -> str:
    """The published int8 latency of ``bench`` on that board, runtime (and release)."""
    key = board.lower().replace("-", "").removesuffix("q")
    hit = rows[rows["group"].str.startswith(key) & (rows["runtime"] == runtime)
               & (rows["benchmark"] == bench) & (rows["dtype"] == "int8")
               & rows["config"].isna()]
    if release is not None:
        hit = hit[hit["release"] == release]
    if hit.empty:
        return "–"
    return f"{hit['latency_ms'].median():.4g}"


def reference_estimates(data: pd.DataFrame, models: dict[str, Path]) -> str:
    table = load_coefficients()
    analyses = {b: analyse(path.read_bytes(), str(path)) for b, path in models.items()}
    rows, times = [], []
    for board, core, mhz, runtime, release in BOARDS:
        target = Target(board, core, float(mhz), runtime, runtime_version=release)
        cells = []
        for b in models:
            t0 = time.perf_counter()
            e = estimate(analyses[b], target, table)
            times.append(time.perf_counter() - t0)
            cells.append(f"{e.latency.text(unit='')} / "
                         f"{published(data, board, runtime, release, b)}")
        rows.append([board, core, mhz, f"{runtime} {release or '(not stated)'}", *cells])
    out = textable.render(["board", "core", "MHz", "runtime, release", *models], rows,
                          numeric={2}, style="markdown")
    return out + (f"\n\nOne estimate (analysis done, table loaded): median "
                  f"{sorted(times)[len(times) // 2] * 1e3:.0f} ms, slowest "
                  f"{max(times) * 1e3:.0f} ms (target: under 1 s per call).")


def estimate_call_time(model: Path, runs: int = 3) -> str:
    """Wall time of a whole ``edgebench estimate`` call in a fresh process (median of
    ``runs``), and the machine's load while it ran."""
    import os
    import subprocess

    device = Path(__file__).resolve().parents[1] / "devices" / "nucleo-l4r5zi.yaml"
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bench", "estimate", str(model), "--device",
                        str(device)], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return (f"`edgebench estimate {model.name} --device nucleo-l4r5zi` in a fresh process: "
            f"median {sorted(times)[runs // 2]:.2f} s of {runs} (target: under 1 s; Python, "
            f"NumPy and pydantic imports are most of it; load {load:.1f} per core)")


def shipped_datasheets() -> dict[str, dict]:
    """The datasheet power figures of the shipped device files, by board: what a user of a
    held-out board has (a figure derived from the published results is not one)."""
    return device_datasheets([Path(__file__).resolve().parents[1] / "devices"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=SHARED / "data" / "mlperf_tiny_results.csv")
    p.add_argument("--models", type=Path, default=SHARED / "models" / "mlperf_tiny")
    p.add_argument("--quick", action="store_true", help="skip the nested runs")
    p.add_argument("--holdout", type=Path, default=default_root() / "unlike-mlperf",
                   help="the folder benchmarks/unlike_mlperf.py fills (its emulated records "
                        "calibrate the new-model interval, as for the packaged table)")
    args = p.parse_args()
    import published_models as pm
    import unlike_mlperf

    references = {b: args.models / f for b, f in REFERENCE_FILES.items()}
    data = results_data(args.results, references)
    holdout = unlike_mlperf.holdout_data(args.holdout)
    print(f"holdout for the new-model interval: {unlike_mlperf.describe(holdout, args.holdout)}\n")
    t0 = time.perf_counter()
    report = evaluate(data, nested=not args.quick, holdout=holdout,
                      datasheets=shipped_datasheets())
    print(render(report))
    print(f"\n(evaluation took {time.perf_counter() - t0:.0f} s)")
    print("\nLeave whole systems out, by system:\n")
    print(render_systems(report))
    print("\nModels beyond the four references, never calibrated on (the procedure fitted on "
          "the MLPerf Tiny results; published latencies):\n")
    print(pm.reference_only(args.results, args.models, holdout))
    print("\nEstimates with the packaged table: estimated ms (80 % interval) / published ms\n")
    print(reference_estimates(data.rows, references))
    print(estimate_call_time(references["kws"]))


if __name__ == "__main__":
    main()
