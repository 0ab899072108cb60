"""Flash and RAM of a model on a device: the runtime's footprint and the arena estimate."""

from __future__ import annotations

from dataclasses import dataclass

from bench.estimate.analysis import Analysis


@dataclass(frozen=True)
class Footprint:
    """A runtime's own code and RAM (outside the model and its arena)."""

    code_kb: float  # the runtime's core
    per_kernel_kb: float  # each distinct operator type's kernel
    ram_kb: float
    source: str


_NOMINAL = "nominal (no published figure found; an order of magnitude, edit to suit)"
#: Runtime footprints. Only TFLite Micro's core figure is published; the rest are nominal.
FOOTPRINTS: dict[str, Footprint] = {
    "tflm": Footprint(16, 4, 4, "core runtime 16 KB on a Cortex-M3 (TensorFlow Lite for "
                                "Microcontrollers overview, tensorflow.org/lite/microcontrollers); "
                                "4 KB per kernel and 4 KB RAM nominal"),
    "x-cube-ai": Footprint(20, 2, 2, _NOMINAL),
    "plumerai": Footprint(16, 3, 2, _NOMINAL),
    "microtvm": Footprint(4, 3, 1, _NOMINAL + "; ahead-of-time compiled, no interpreter"),
    "bosch-hale": Footprint(4, 3, 1, _NOMINAL + "; code generator, no interpreter"),
    "onnc": Footprint(4, 3, 1, _NOMINAL + "; code generator, no interpreter"),
    "litert": Footprint(2048, 0, 1024, _NOMINAL + "; a shared library on Linux-class devices"),
    "leip": Footprint(2048, 0, 1024, _NOMINAL + "; a shared library on Linux-class devices"),
}

#: Activation-based arena estimate: planned activations + per-model bookkeeping. Constants
#: rounded from a fit to TFLite Micro's recorded arena of 13 models (MLPerf Tiny and the seed
#: models): median error 13 %, worst −54 % (a 3 KB arena). See docs/estimator.md.
ARENA_BASE = 1024
ARENA_PER_TENSOR = 32
ARENA_PER_CHANNEL = 16  # per-channel requantisation data of conv/depthwise layers


def arena_estimate(analysis: Analysis) -> int:
    """TFLite Micro arena estimate from the activations' live ranges (no interpreter)."""
    return (analysis.peak_activation_bytes + analysis.variable_bytes + ARENA_BASE
            + ARENA_PER_TENSOR * analysis.tensors + ARENA_PER_CHANNEL * analysis.conv_channels)
