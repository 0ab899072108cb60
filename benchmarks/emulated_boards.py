"""Emulated boards: the MLPerf Tiny reference models in QEMU on each emulated core.

Per core and model: the library's compile time (logged when it was built), the firmware's build
time, instructions per inference, the 32-bit arena next to x86-64 TFLite Micro's, firmware
flash and RAM, and QEMU's wall time per inference on this host. The cycle model that turns
these instructions into latency, and its error against the published results, is
``benchmarks/cycle_model.py``'s.

Needs the toolchain and QEMU (``make toolchain``) and the third-party sources
(``$EDGEBENCH_THIRD_PARTY``, default ``../shared/third_party``). Libraries and firmware are
cached in the firmware cache (``$EDGEBENCH_FIRMWARE_CACHE``, default under ``.cache``): the
first run builds a library per core (minutes), later runs take about a minute.
Usage: python benchmarks/emulated_boards.py [--cores cortex-m4f ...]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench import textable
from bench.board.reference_models import REFERENCE_FILES
from bench.firmware.image import build_for_device
from bench.firmware.library import library
from bench.firmware.machines import DEFAULT_MACHINE, MACHINES
from bench.runners import qemu
from bench.runners.base import RunRequest
from bench.runners.io import sample_inputs
from bench.runners.serial import input_spec, timed_windows

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CORES = ("cortex-m4f", "cortex-m7", "cortex-m33", "cortex-m55")
#: A board large enough for every reference model (the machines' own memories).
MEMORY = {"flash_kb": 2048, "ram_kb": 1024}
WALL_WINDOW_S = 1.0  # host seconds of inferences to time QEMU's speed


def run_one(core: str, bench: str, model: Path) -> dict[str, object]:
    """Build, boot and measure one reference model on one core."""
    from bench.runners.tflm import measure_arena

    machine = MACHINES[DEFAULT_MACHINE[core]]
    device = {"id": f"qemu-{core}", "core": core, "clock_mhz": 100, "memory": MEMORY}
    request = RunRequest(artifact=model, dataset=None, options={"machine": machine.name},
                         device=device, warmup=1)
    started = time.monotonic()
    built = build_for_device(model.read_bytes(), machine.name, MEMORY["flash_kb"],
                             MEMORY["ram_kb"], model.name)
    build_s = time.monotonic() - started
    spec = input_spec(request)
    inputs = sample_inputs(None, [spec], 3, 0)
    with qemu.board(request, built) as link:
        virtual_ns = timed_windows(link, inputs, 1, 3, 0.05, 1)
        link.load(inputs[0][0].tobytes())
        n = max(1, round(WALL_WINDOW_S / max(virtual_ns[0] * 4e-9, 1e-6)))  # ~4 ns wall/insn
        started = time.monotonic()
        link.infer(n, 0, 120.0)
        wall_ms = (time.monotonic() - started) / n * 1e3
    x86 = built.arena_x86 if built.arena_x86 is not None else measure_arena(model.read_bytes())
    return {"core": core, "machine": machine.name, "benchmark": bench,
            "instructions": sorted(virtual_ns)[1] / qemu.NS_PER_INSTRUCTION,
            "arena": built.arena_used, "arena_x86": x86, "flash": built.flash_used,
            "ram": built.ram_used, "firmware_s": built.firmware_seconds,
            "build_s": round(build_s, 1), "wall_ms": wall_ms}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cores", nargs="+", default=list(CORES), choices=sorted(DEFAULT_MACHINE))
    p.add_argument("--models", type=Path, default=SHARED / "models" / "mlperf_tiny")
    args = p.parse_args()
    os.environ.setdefault("EDGEBENCH_THIRD_PARTY", str(SHARED / "third_party"))

    rows = [run_one(core, bench, args.models / name)
            for core in args.cores for bench, name in REFERENCE_FILES.items()]
    print("Reference models in QEMU (-icount shift=0), CMSIS-NN kernels:\n")
    print(textable.render(
        ["core", "machine", "model", "instructions", "arena B (x86-64)", "flash B", "RAM B",
         "firmware build s", "QEMU ms/inference"],
        [[r["core"], r["machine"], r["benchmark"], f"{r['instructions']:,.0f}",
          f"{r['arena']:,} ({r['arena_x86']:,})", f"{r['flash']:,}", f"{r['ram']:,}",
          f"{r['firmware_s']:.1f}", f"{r['wall_ms']:.2f}"] for r in rows], numeric=range(3, 9)))
    libraries = [[core, MACHINES[DEFAULT_MACHINE[core]].tflm_arch,
                  f"{library(MACHINES[DEFAULT_MACHINE[core]].tflm_arch).compile_seconds():.0f}"]
                 for core in args.cores]
    print("\nTFLite Micro library compile time per core (seconds logged when it was built, the "
          "kernels these models use):\n")
    print(textable.render(["core", "TARGET_ARCH", "compile s"], libraries))



def line_reassembly() -> str:
    """How long the link takes to reassemble a 16,384-output results line (98,000 characters)
    that a pty delivers a byte at a time, or in 64-byte reads (QEMU's UART gives both)."""
    from bench.board.protocol import LineSplitter

    line = b"m-results-[" + b"0.000," * 16384 + b"]\r\n"
    times = []
    for size in (1, 64):
        splitter, started = LineSplitter(max_line=len(line)), time.perf_counter()
        for i in range(0, len(line), size):
            splitter.feed(line[i:i + size])
        times.append(time.perf_counter() - started)
    return (f"Reassembling a {len(line):,}-character results line: {times[0]:.3f} s fed a byte "
            f"at a time, {times[1]:.3f} s in 64-byte reads (it was 3.1 s and 0.03 s before the "
            f"splitter stopped re-splitting its whole buffer on each read)")


if __name__ == "__main__":
    main()
    print(f"\n{line_reassembly()}")
