"""The processor cores a device file may name (``edgebench devices cores`` lists them).

Names are lower-case. ``simd_macs_per_cycle`` is the nominal int8 multiply-accumulate
throughput of the core's SIMD/DSP extension per cycle (a prior for the estimator, not a
measurement); ``family`` groups cores whose costs behave alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.errors import unknown


@dataclass(frozen=True)
class Core:
    name: str
    family: str  # "cortex-m", "cortex-a", "xtensa", "riscv", "host"
    description: str
    simd_macs_per_cycle: float  # nominal int8 MACs/cycle with the core's DSP/SIMD instructions
    fpu: bool


CORES: dict[str, Core] = {c.name: c for c in (
    Core("cortex-m0plus", "cortex-m", "Arm Cortex-M0+ (Armv6-M, no DSP, no FPU)", 0.25, False),
    Core("cortex-m3", "cortex-m", "Arm Cortex-M3 (Armv7-M, no DSP, no FPU)", 0.5, False),
    Core("cortex-m4", "cortex-m", "Arm Cortex-M4 without FPU (Armv7E-M DSP)", 1.0, False),
    Core("cortex-m4f", "cortex-m", "Arm Cortex-M4 with single-precision FPU (Armv7E-M DSP)",
         1.0, True),
    Core("cortex-m7", "cortex-m", "Arm Cortex-M7 (dual-issue, Armv7E-M DSP, FPU)", 2.0, True),
    Core("cortex-m33", "cortex-m", "Arm Cortex-M33 (Armv8-M Mainline, DSP, FPU)", 1.0, True),
    Core("cortex-m55", "cortex-m", "Arm Cortex-M55 (Armv8.1-M, Helium MVE)", 4.0, True),
    Core("cortex-m85", "cortex-m", "Arm Cortex-M85 (Armv8.1-M, Helium MVE, dual-issue)", 8.0,
         True),
    Core("esp32-xtensa-lx6", "xtensa", "Espressif ESP32 Xtensa LX6 (no SIMD for int8)", 0.3,
         True),
    # Xtensa priors below 1 MAC/cycle: the nominal SIMD widths overestimate what TFLite Micro
    # gets from them (checked against Espressif's published person-detection times).
    Core("esp32s3-xtensa-lx7", "xtensa", "Espressif ESP32-S3 Xtensa LX7 with PIE 128-bit SIMD",
         1.3, True),
    Core("riscv32", "riscv", "32-bit RISC-V microcontroller core (RV32IMC, no vector unit)",
         0.5, False),
    Core("cortex-a53", "cortex-a", "Arm Cortex-A53 (Armv8-A, NEON)", 8.0, True),
    Core("cortex-a72", "cortex-a", "Arm Cortex-A72 (Armv8-A, NEON, out of order)", 16.0, True),
    Core("host", "host", "The machine running edgebench (measured, never estimated)", 0.0,
         True),
)}


def get_core(name: str) -> Core:
    """The core called ``name``; a KeyError that names the closest known core."""
    if name in CORES:
        return CORES[name]
    raise KeyError(unknown("core", name, CORES))
