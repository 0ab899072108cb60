"""The emulated cycle model per core: its leave-one-model-out error against the published
TFLite Micro latencies, beside one cycles-per-instruction factor.

Per core with published TFLM (CMSIS-NN) results of the MLPerf Tiny reference models: the
cycle model (:mod:`bench.firmware.cycles`: per-class costs with the manuals' priors, the
board's flash wait states and cache from its device file, a few multipliers fitted with a
ridge toward the priors' common scale) predicts each model's latency from a fit on the other
three, the ridge selected on those three alone; beside it, the same with one
cycles-per-instruction factor (the geometric mean of the others' latency × clock ÷
instructions: what the ``qemu`` runner used before) and with the priors only (one common
scale). Targets: Cortex-M4F median ≤ 10 %, worst ≤ 20 %; Cortex-M33 median ≤ 10 %. Then the
fitted costs, and what the priors alone give the uncalibrated cores.

The instruction classes come from ``bench/firmware/class_counts.json``; ``--count``
regenerates it, running each reference model's firmware on each emulated core under QEMU with
edgebench's plugin (needs the toolchain, QEMU and the third-party sources, as
``benchmarks/emulated_boards.py``; a few minutes with the libraries built). ``--write`` stores
the fitted model as ``bench/firmware/cycle_model.json`` (what the ``qemu`` runner uses).
Usage: python benchmarks/cycle_model.py [--count [--cores cortex-m4f ...]] [--write]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import textable
from bench.board.reference_models import BENCHMARKS, REFERENCE_FILES
from bench.devices.device import find_device, search_dirs
from bench.firmware import classes, cycles

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CORES = ("cortex-m4f", "cortex-m7", "cortex-m33", "cortex-m55")
PACKAGE = Path(cycles.__file__).parent
TARGETS = {"cortex-m4f": (10.0, 20.0), "cortex-m33": (10.0, None)}


def count_one(core: str, model: Path) -> dict[str, Any]:
    """One reference model's instruction classes per inference on one core (QEMU plugin)."""
    from plugin_slowdown import emulated_build  # a sibling script

    from bench.firmware.machines import DEFAULT_MACHINE, MACHINES
    from bench.runners import qemu
    from bench.runners.io import sample_inputs
    from bench.runners.serial import input_spec, timed_windows

    machine = MACHINES[DEFAULT_MACHINE[core]]
    request, built = emulated_build(core, model)
    inputs = sample_inputs(None, [input_spec(request)], 2, 0)
    warnings: list[str] = []
    with tempfile.TemporaryDirectory(prefix="edgebench-counts-") as tmp:
        out = Path(tmp) / "classes.json"
        with qemu.board(request, built, classes.plugin_option(built.elf, machine, out),
                        warnings) as link:
            if warnings:
                raise SystemExit(f"the plugin did not load: {warnings}")
            virtual_ns = timed_windows(link, inputs, 0, 2, 0.001, 1)
        counts = classes.per_inference(classes.read_counts(out), min(virtual_ns))
    return {"machine": machine.name, **{k: counts[k] for k in (
        "instructions", "classes", "branch_taken", "memory", "inferences", "check")}}


def count(cores: list[str], models: Path) -> None:
    """Regenerate ``class_counts.json`` for ``cores`` (other cores' entries kept)."""
    from bench.runners import qemu

    path = PACKAGE / cycles.COUNTS
    table = json.loads(path.read_text()) if path.exists() else {"cores": {}}
    for core in cores:
        table["cores"][core] = {bench: count_one(core, models / REFERENCE_FILES[bench])
                                for bench in BENCHMARKS}
        print(f"counted {core}: " + ", ".join(
            f"{b} {c['instructions']:,.0f}" for b, c in table["cores"][core].items()))
    table.update({
        "counted": datetime.now(UTC).date().isoformat(),
        "method": "mean per marked inference of the MLPerf Tiny reference models' firmware "
                  "(TFLite Micro + CMSIS-NN, int8) under QEMU with edgebench's plugin "
                  "(classes and memory regions), the firmware's own clock as the check",
        "firmware": qemu.versions()})
    path.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}")


def memories(rows: list[dict[str, Any]]) -> dict[str, cycles.MemorySystem]:
    """Each published system's flash wait states and cache, from its device file (the
    system's name in lower case) or the defaults."""
    out = {}
    for system in {r["system"] for r in rows}:
        try:
            device = find_device(system.lower(), search_dirs()).model_dump()
        except (LookupError, ValueError):
            device = {}
        out[system] = cycles.memory_system(device)
    return out


def one_factor_loo(rows: list[dict[str, Any]], counts: dict[str, Any]) -> dict[str, float]:
    """Per held-out benchmark: its error in % with one cycles-per-instruction factor, the
    geometric mean of the other benchmarks' (latency × clock ÷ instructions)."""
    factor = {r["benchmark"]: r["latency_ms"] * r["clock_mhz"] * 1e3
              / counts[r["benchmark"]]["instructions"] for r in rows}
    out = {}
    for r in rows:
        rest = [math.log(f) for b, f in factor.items() if b != r["benchmark"]]
        cpi = math.exp(statistics.fmean(rest))
        predicted = counts[r["benchmark"]]["instructions"] * cpi / (r["clock_mhz"] * 1e3)
        out[r["benchmark"]] = 100 * (predicted / r["latency_ms"] - 1)
    return out


def summary(errors: list[float]) -> str:
    absolute = [abs(e) for e in errors]
    return f"{statistics.median(absolute):.1f} % / {max(absolute):.1f} %"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", action="store_true", help="regenerate class_counts.json (QEMU)")
    p.add_argument("--cores", nargs="+", default=list(CORES), choices=CORES)
    p.add_argument("--models", type=Path, default=SHARED / "models" / "mlperf_tiny")
    p.add_argument("--results", type=Path, default=SHARED / "data" / "mlperf_tiny_results.csv")
    p.add_argument("--write", action="store_true", help="store the fitted model in the package")
    args = p.parse_args()
    os.environ.setdefault("EDGEBENCH_THIRD_PARTY", str(SHARED / "third_party"))
    if args.count:
        count(args.cores, args.models)
        cycles.reference_counts.cache_clear()

    counts = cycles.reference_counts()
    rows = cycles.published_tflm(str(args.results))
    systems = memories(rows)
    fitted = cycles.fit(rows, counts, systems)
    scaled = cycles.fit(rows, counts, systems, ridge=1e6)  # the priors, one common scale
    for core, entry in fitted.items():
        used = [r for r in rows if r["core"] == core]
        single = one_factor_loo(used, counts[core])
        prior = {e["benchmark"]: e["error_pct"] for e in scaled[core]["loo"]}
        board = ", ".join(sorted({f"{r['system']} {r['clock_mhz']:g} MHz, MLPerf Tiny "
                                  f"{r['version']} ({r['software']})" for r in used}))
        memory = systems[used[0]["system"]]
        where = ", ".join(f"{k} from the {v}" for k, v in memory.provenance.items())
        print(f"\n{core}: leave-one-model-out on {board}; flash {memory.wait_states} wait "
              f"states, cache {memory.cache} ({where}):\n")
        print(textable.render(
            ["model", "published ms", "predicted ms", "error", "ridge", "priors only",
             "one CPI"],
            [[e["benchmark"], f"{e['published_ms']:g}", f"{e['predicted_ms']:.4g}",
              f"{e['error_pct']:+.1f} %", f"{e['ridge']:g}", f"{prior[e['benchmark']]:+.1f} %",
              f"{single[e['benchmark']]:+.1f} %"] for e in entry["loo"]], numeric=range(1, 7)))
        target = TARGETS.get(core)
        verdict = ""
        if target:
            median_ok = entry["loo_median_abs_pct"] <= target[0]
            worst_ok = target[1] is None or entry["loo_max_abs_pct"] <= target[1]
            verdict = (f"; target median ≤ {target[0]:g} %"
                       + (f", worst ≤ {target[1]:g} %" if target[1] else "")
                       + (": met" if median_ok and worst_ok else ": NOT met"))
        print(f"median / worst |error|: cycle model {entry['loo_median_abs_pct']} % / "
              f"{entry['loo_max_abs_pct']} %, priors only "
              f"{summary(list(prior.values()))}, one CPI {summary(list(single.values()))}"
              f"{verdict}")
        print(f"fitted on all four (ridge {entry['ridge']:g}): multipliers "
              + ", ".join(f"{g} {v:.2f}" for g, v in entry["multipliers"].items()))

    print("\nCosts per event (cycles): the manuals' priors, and fitted where published results "
          "exist:\n")
    header = ["term"]
    columns = []
    for core in args.cores:
        prior = cycles.prior_costs(core)
        header.append(core + (" fitted" if core in fitted else " (uncalibrated)"))
        columns.append(fitted[core]["costs"] if core in fitted else prior)
    print(textable.render(header, [[t, *(f"{c[t]:.3g}" for c in columns)]
                                   for t in cycles.TERMS], numeric=range(1, len(header))))

    print("\nWhat the model gives each reference model at 100 MHz, zero wait states (cycles "
          "per instruction in brackets):\n")
    table = []
    for core in args.cores:
        costs = fitted[core]["costs"] if core in fitted else cycles.prior_costs(core)
        for bench, c in counts.get(core, {}).items():
            n = cycles.cycles(c, costs, cycles.MemorySystem())
            table.append([core, bench, f"{c['instructions']:,.0f}",
                          f"{n / 1e5:.4g} ms ({n / c['instructions']:.2f})",
                          "fitted" if core in fitted else "uncalibrated"])
    print(textable.render(["core", "model", "instructions", "latency", "model"], table,
                          numeric=(2, 3)))

    if args.write:
        path = PACKAGE / cycles.FITTED
        path.write_text(json.dumps({
            "fitted": datetime.now(UTC).date().isoformat(),
            "method": "per core: multipliers of the priors' cost groups "
                      f"({', '.join(cycles.GROUPS)}) minimising the relative squared error "
                      "of the published TFLite Micro latencies plus a ridge toward one common "
                      "scale (the ridge selected by leave-one-model-out on the rows); the "
                      "reference models' instruction classes from class_counts.json",
            "data": args.results.name, "counts": counts and cycles.COUNTS,
            "cores": fitted}, indent=1) + "\n")
        print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
