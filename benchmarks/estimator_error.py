"""The estimator's honest error, both ways, and its estimates for the reference models.

1. leave whole systems out (a board with its core, clock and runtime, all its submissions):
   median and 90th percentile absolute percentage error of latency and energy;
2. leave each reference model out (fit on the other three, predict the fourth).

Then the per-system errors, and the packaged table's estimates of the four reference models on
a few boards next to the latest published latency. Deterministic; about 10 s.
Usage: python benchmarks/estimator_error.py [--results CSV] [--models DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from bench import textable
from bench.estimate import calibrate as cal
from bench.estimate.analysis import analyse
from bench.estimate.model import Target, estimate, load_coefficients

SHARED = Path(__file__).resolve().parents[2] / "shared"
FILES = {"kws": "kws_ref_model_int8.tflite", "vww": "vww_96_int8.tflite",
         "ic": "ic_resnet8_int8.tflite", "ad": "ad01_int8.tflite"}
# (board in the CSV, core, clock MHz, runtime)
BOARDS = [("NUCLEO-L4R5ZI", "cortex-m4f", 120, "x-cube-ai"),
          ("NUCLEO-L4R5ZI", "cortex-m4f", 120, "tflm"),
          ("NUCLEO-H7A3ZI-Q", "cortex-m7", 280, "x-cube-ai"),
          ("NUCLEO-U575ZI-Q", "cortex-m33", 160, "plumerai"),
          ("EK-RA8D1", "cortex-m85", 480, "tflm"),
          ("NUCLEO-G0B1RE", "cortex-m0plus", 64, "bosch-hale")]


def published(rows: pd.DataFrame, board: str, runtime: str, bench: str) -> str:
    """The latest published int8 latency of ``bench`` on that board and runtime."""
    key = board.lower().replace("-", "").removesuffix("q")
    hit = rows[rows["group"].str.startswith(key) & (rows["runtime"] == runtime)
               & (rows["benchmark"] == bench) & (rows["dtype"] == "int8")]
    if hit.empty:
        return "–"
    last = hit[hit["round"] == hit["round"].max()]
    return f"{last['latency_ms'].median():.3g} ({last['version'].iloc[0]})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=SHARED / "data" / "mlperf_tiny_results.csv")
    p.add_argument("--models", type=Path, default=SHARED / "models" / "mlperf_tiny")
    args = p.parse_args()
    models = {b: args.models / f for b, f in FILES.items()}
    rows, feats, ref = cal._prepare(args.results, models)
    lso = cal.leave_systems_out(rows, feats, ref)
    lmo = cal.leave_models_out(rows, feats, ref)
    summary = cal.summarise(lso, lmo)
    print(cal.render(summary))

    print("\nLeave whole systems out, by system (median absolute % error):\n")
    systems = [[s["system"], s["core"], s["runtime"], s["rows"], "yes" if s["seen"] else "no",
                f"{s['median_ape']:.1f} %",
                "–" if pd.isna(s["energy_median_ape"]) else f"{s['energy_median_ape']:.1f} %"]
               for s in summary["leave_systems_out_by_system"]]
    print(textable.render(["system", "core", "runtime", "rows", "seen", "latency", "energy"],
                          systems, numeric={3, 5, 6}, style="markdown"))

    table = load_coefficients()
    analyses = {b: analyse(path.read_bytes(), str(path)) for b, path in models.items()}
    print(f"\nEstimates with the packaged table (fitted {table.meta.get('fitted')}): "
          f"estimated ms / latest published ms (round)\n")
    boards = []
    for board, core, mhz, runtime in BOARDS:
        target = Target(board, core, float(mhz), runtime)
        boards.append([board, core, mhz, runtime, *(
            f"{estimate(analyses[b], target, table).latency_ms:.3g} / "
            f"{published(rows, board, runtime, b)}" for b in FILES)])
    print(textable.render(["board", "core", "MHz", "runtime", *FILES], boards, numeric={2},
                          style="markdown"))


if __name__ == "__main__":
    main()
