"""Per-layer agreement with LiteRT of the MLPerf Tiny reference models (int8): where the
emulated Cortex-M4F firmware's (TFLite Micro + CMSIS-NN) and x86-64 TFLite Micro's outputs
start to differ from LiteRT's, and whether they differ from LiteRT's built-in kernels at all.

Per model and runtime: ``output_max_diff`` (quantized steps, on the generated inputs the
runners' agreement check uses), the first layer beyond one step, the first layer off at all,
the largest difference of any layer, and the first layer beyond one step from LiteRT's
built-in kernels (no XNNPACK). Each model's per-layer table follows.

Needs the toolchain and QEMU (``make toolchain``) and the third-party sources
(``$EDGEBENCH_THIRD_PARTY``, default ``../shared/third_party``); firmware is cached.
Usage: python benchmarks/layer_agreement.py [--models kws ad ...] [--runtimes qemu tflm]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import yaml

from bench import textable
from bench.board.reference_models import REFERENCE_FILES
from bench.results.agreement import render
from bench.runners import qemu, tflm
from bench.runners.base import RunRequest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def evaluate(runtime: str, model: Path) -> tuple[Any, float]:
    """The runner's evaluate phase on ``model`` (no data set: generated inputs), timed."""
    started = time.monotonic()
    if runtime == "qemu":
        device = yaml.safe_load((ROOT / "devices" / "qemu-cortex-m4f.yaml").read_text())
        out = qemu.evaluate(RunRequest(artifact=model, dataset=None,
                                       options=device["connection"], device=device))
    else:
        out = tflm.evaluate(RunRequest(artifact=model, dataset=None))
    return out, time.monotonic() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(REFERENCE_FILES),
                   choices=sorted(REFERENCE_FILES))
    p.add_argument("--runtimes", nargs="+", default=["qemu", "tflm"], choices=["qemu", "tflm"])
    p.add_argument("--folder", type=Path, default=SHARED / "models" / "mlperf_tiny")
    args = p.parse_args()
    os.environ.setdefault("EDGEBENCH_THIRD_PARTY", str(SHARED / "third_party"))
    rows, tables = [], []
    for bench in args.models:
        for runtime in args.runtimes:
            out, seconds = evaluate(runtime, args.folder / REFERENCE_FILES[bench])
            found = out.details["agreement"]
            if "reason" in found:
                rows.append([bench, runtime, "-", found["reason"], "", "", "", ""])
                continue
            layers = found["layers"]
            rows.append([bench, runtime, f"{out['output_max_diff'].value:g}",
                         "none" if found["first_layer"] is None else
                         f"{found['first_layer']} {found['op']} ({found['max_diff']:g})",
                         "none" if found["origin"] is None else str(found["origin"]),
                         f"{max(la['max_diff'] for la in layers):g}",
                         "none" if found["builtin_first_layer"] is None else
                         str(found["builtin_first_layer"]), f"{seconds:.0f} s"])
            tables.append(render(f"{bench}@{runtime}", out.details))
    print(textable.render(["model", "runtime", "output diff", "first layer > 1 step",
                           "first off", "largest", "vs built-in > 1", "evaluate"], rows))
    for table in tables:
        print()
        print(table)


if __name__ == "__main__":
    main()
