"""How much edgebench's QEMU plugin (instructions by class, memory accesses by region) slows an
emulated inference, and the instruction mix it counts.

Per reference model on one core: QEMU's wall time per inference on this host without the plugin,
with it counting classes only (``mem=off``) and with memory regions too (the runner's
``instruction_classes``), best of a few windows of ``infer N 0``; the slowdown (target ≤ 3×);
then the mix per inference, taken branches, memory accesses by region, and how the classes' sum
compares with the firmware's clock (instructions per inference from the timed windows).

Needs the toolchain, QEMU and the third-party sources (as ``benchmarks/emulated_boards.py``);
the firmware and the plugin are cached. Usage:
python benchmarks/plugin_slowdown.py [--core cortex-m4f] [--models kws ad ...] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import textable
from bench.board.reference_models import REFERENCE_FILES
from bench.firmware import classes
from bench.firmware.image import build_for_device
from bench.firmware.machines import DEFAULT_MACHINE, MACHINES
from bench.runners import qemu
from bench.runners.base import RunRequest
from bench.runners.io import sample_inputs
from bench.runners.serial import input_spec, timed_windows

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MEMORY = {"flash_kb": 2048, "ram_kb": 1024}
WALL_WINDOW_S = 2.0  # host seconds per timed window without the plugin


def wall_per_inference(request: RunRequest, built: Any, plugin: str | None, n: int,
                       repeats: int) -> tuple[float, float]:
    """(best wall seconds per inference over ``repeats`` windows of ``n``, instructions per
    inference from the firmware's clock)."""
    spec = input_spec(request)
    inputs = sample_inputs(None, [spec], 3, 0)
    warnings: list[str] = []
    with qemu.board(request, built, plugin, warnings) as link:
        if warnings:
            raise SystemExit(f"the plugin did not load: {warnings}")
        virtual_ns = timed_windows(link, inputs, 1, 3, 0.02, 1)
        link.load(inputs[0][0].tobytes())
        walls = []
        for _ in range(repeats):
            started = time.monotonic()
            link.infer(n, 0, 600.0)
            walls.append((time.monotonic() - started) / n)
    return min(walls), statistics.median(virtual_ns) / qemu.NS_PER_INSTRUCTION


def emulated_build(core: str, model: Path) -> tuple[RunRequest, Any]:
    """A run request for ``model`` on the emulated board of ``core`` (a generous memory map),
    and its firmware, built (or taken from the cache)."""
    machine = MACHINES[DEFAULT_MACHINE[core]]
    device = {"id": f"qemu-{core}", "core": core, "clock_mhz": 100, "memory": MEMORY}
    request = RunRequest(artifact=model, dataset=None, options={"machine": machine.name},
                         device=device, warmup=1)
    return request, build_for_device(model.read_bytes(), machine.name, MEMORY["flash_kb"],
                                     MEMORY["ram_kb"], model.name)


def run(core: str, bench: str, model: Path, repeats: int) -> dict[str, object]:
    """Each variant (no plugin, classes only, classes and memory) once per round, the rounds
    interleaved so that a change in the host's load hits them alike; the best of each."""
    machine = MACHINES[DEFAULT_MACHINE[core]]
    request, built = emulated_build(core, model)
    plain, instructions = wall_per_inference(request, built, None, 1, 1)
    n = max(1, round(WALL_WINDOW_S / plain))
    walls: dict[str, list[float]] = {"plain_s": [], "classes_s": [], "memory_s": []}
    row: dict[str, object] = {"core": core, "benchmark": bench, "n": n}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for name in walls:
                out = Path(tmp) / f"{name}.json"
                option = None if name == "plain_s" else classes.plugin_option(
                    built.elf, machine, out, memory=name == "memory_s")
                wall, instructions = wall_per_inference(request, built, option, n, 1)
                walls[name].append(wall)
                if name == "memory_s":
                    row["counts"] = classes.per_inference(classes.read_counts(out),
                                                          instructions)
    row.update({name: min(values) for name, values in walls.items()})
    row["instructions"] = instructions
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--core", default="cortex-m4f", choices=sorted(DEFAULT_MACHINE))
    p.add_argument("--models", nargs="+", default=["kws"], choices=sorted(REFERENCE_FILES))
    p.add_argument("--dir", type=Path, default=SHARED / "models" / "mlperf_tiny")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    os.environ.setdefault("EDGEBENCH_THIRD_PARTY", str(SHARED / "third_party"))
    rows = [run(args.core, bench, args.dir / REFERENCE_FILES[bench], args.repeats)
            for bench in args.models]

    print(f"QEMU wall time per inference on this host ({args.core}, "
          f"{MACHINES[DEFAULT_MACHINE[args.core]].name}, -icount shift=0), best of "
          f"{args.repeats} interleaved rounds:\n")
    print(textable.render(
        ["model", "inferences/window", "plain ms", "classes ms", "slowdown",
         "classes+memory ms", "slowdown"],
        [[r["benchmark"], r["n"], f"{r['plain_s'] * 1e3:.2f}", f"{r['classes_s'] * 1e3:.2f}",
          f"{r['classes_s'] / r['plain_s']:.2f}×", f"{r['memory_s'] * 1e3:.2f}",
          f"{r['memory_s'] / r['plain_s']:.2f}×"] for r in rows], numeric=range(1, 7)))
    for r in rows:
        c = r["counts"]
        total = c["instructions"]
        print(f"\n{r['benchmark']}: {total:,.0f} instructions per inference counted by class "
              f"({c['check']['difference'] * 100:+.3f} % against the firmware's clock, "
              f"{r['instructions']:,.0f}), over {c['inferences']} marked inferences:\n")
        print(textable.render(["class", "per inference", "share"],
                              [[k, f"{v:,.0f}", f"{v / total * 100:.1f} %"]
                               for k, v in c["classes"].items()], numeric=(1, 2)))
        branches = c["classes"]["branch"]
        print(f"\nbranches taken: {c['branch_taken']:,.0f} of {branches:,.0f}")
        print(textable.render(["memory access", "per inference"],
                              [[k, f"{v:,.0f}"] for k, v in c["memory"].items()], numeric=(1,)))


if __name__ == "__main__":
    main()
