"""What a layer's shape costs: single-layer int8 models on emulated boards, instruction counts.

The estimator prices a layer by its MACs and operator class; a thin layer (few input channels,
few output channels, a short sum per output) costs more per MAC than the reference models'
layers. This sweep measures by how much, on TFLite Micro with CMSIS-NN under QEMU (exact
instruction counts, ``method: emulated``): about thirty single-layer models — k×k and 1-D
convolutions from 1 to 64 input channels and 4 to 64 output channels, 1×1 convolutions,
depthwise convolutions and fully connected layers — plus a one-MAC model for the fixed cost of
an inference and its one operator call. It fits, per core,

    instructions = call + Σ_layers  macs·a[class] + outputs·b[class] + patches·g[class]

(``patches``: the elements a convolution gathers per output pixel, summed over pixels — what its
im2col copies: MACs ÷ output channels) and prints each coefficient in conv-MAC units, which is
what the estimator's ``class.out_*`` and ``class.patch_*`` priors hold
(:data:`bench.estimate.fit.PRIORS`).

One core is enough by default: the Cortex-M7 build runs within 1 % of the M4F's instructions on
deep layers and 5–10 % more on the thinnest (the first 17 models, both measured), and the
estimator turns instructions into cycles per core anyway. ``--cores`` measures others.

Needs the toolchain and QEMU (``make toolchain``) and the third-party sources
(``$EDGEBENCH_THIRD_PARTY``, default ``../shared/third_party``). Models, records and firmware are
cached (``$EDGEBENCH_CACHE``): the first run takes about ten minutes on 2 cores.
Usage: python benchmarks/layer_costs.py [--cores qemu-cortex-m4f,...]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import published_models  # noqa: E402 - a sibling script

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

#: id → (kind, input shape, output channels or features, kernel): one layer each.
LAYERS: dict[str, tuple[str, tuple[int, ...], int, tuple[int, int]]] = {
    "unit": ("fc", (1,), 1, (0, 0)),  # the fixed cost of an inference and one operator call
    **{f"conv_{h}x{w}x{c}_{o}_k{kh}x{kw}": ("conv", (h, w, c), o, (kh, kw))
       for h, w, c, o, kh, kw in (
        (16, 16, 1, 8, 3, 3), (16, 16, 3, 8, 3, 3), (16, 16, 8, 8, 3, 3), (16, 16, 32, 8, 3, 3),
        (16, 16, 3, 32, 3, 3), (16, 16, 8, 32, 3, 3), (16, 16, 32, 32, 3, 3),
        (8, 8, 64, 64, 3, 3), (16, 16, 1, 16, 5, 5), (12, 12, 6, 16, 5, 5),
        (16, 16, 16, 4, 3, 3), (16, 16, 3, 64, 3, 3),
        (64, 1, 1, 24, 16, 1), (64, 1, 3, 16, 8, 1), (64, 1, 24, 24, 5, 1),
        (64, 1, 1, 8, 5, 1), (128, 1, 32, 64, 5, 1), (64, 3, 1, 24, 16, 1))},
    **{f"pw_{h}x{w}x{c}_{o}": ("conv", (h, w, c), o, (1, 1)) for h, w, c, o in (
        (16, 16, 8, 8), (16, 16, 32, 32), (16, 16, 16, 96), (8, 8, 96, 16), (16, 16, 4, 24))},
    **{f"dw_{h}x{w}x{c}_k{k}": ("depthwise", (h, w, c), c, (k, k)) for h, w, c, k in (
        (16, 16, 8, 3), (16, 16, 32, 3), (8, 8, 96, 3), (16, 16, 16, 5), (32, 32, 4, 3))},
    **{f"fc_{i}_{o}": ("fc", (i,), o, (0, 0)) for i, o in (
        (561, 128), (128, 64), (64, 6), (256, 256), (16, 16), (1024, 10))},
}


def keras_model(kind: str, shape: tuple[int, ...], out: int, kernel: tuple[int, int]) -> Any:
    keras = published_models.tf_keras()
    layers = keras.layers
    keras.utils.set_random_seed(0)
    inputs = layers.Input(shape)
    if kind == "conv":
        x = layers.Conv2D(out, kernel, padding="same")(inputs)
    elif kind == "depthwise":
        x = layers.DepthwiseConv2D(kernel, padding="same")(inputs)
    else:
        x = layers.Dense(out)(inputs)
    return keras.Model(inputs, x)


def tflite(name: str, folder: Path) -> Path:
    """The int8 .tflite (int8 input and output) of layer ``name``, built once."""
    return published_models.built_once(folder / f"{name}.tflite", lambda: (
        published_models.int8_tflite(keras_model(*LAYERS[name]), "int8", "int8")))


def emulated_run(work: Path, cores: list[str]) -> dict[tuple[str, str], float]:
    """Run every layer model on every core (resumed where a run was left): (model id, device
    id) → instructions per inference."""
    models = {name: tflite(name, work / "models") for name in LAYERS}
    run = published_models.emulated_suite(work, "layer-costs", models, cores, 1)
    return {(r.model, r.device): float(r.metrics["instructions"].value) for r in run.records()
            if r.status == "ok" and "instructions" in r.metrics}


#: What a model is made of, for the fit: per class its MACs, outputs and patches, and ops.
CLASSES = ("conv", "pointwise", "depthwise", "fc")
#: ``call``: an inference with one operator (every model here has one: the two cannot be told
#: apart, and TFLite Micro's cost of an operator call is at most this).
FEATURES = ("call", *(f"{k}.{c}" for k in ("macs", "outputs", "patches") for c in CLASSES))


def features(analysis: Any) -> np.ndarray:
    v = dict.fromkeys(FEATURES, 0.0)
    v["call"] = 1.0
    for op in analysis.ops:
        c = op.cost_class
        if c in CLASSES:
            v[f"macs.{c}"] += op.macs
            v[f"outputs.{c}"] += op.output_elements
            v[f"patches.{c}"] += op.macs / max(1, op.channels)
    return np.array([v[f] for f in FEATURES])


def fit(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative least squares on relative error."""
    from scipy.optimize import nnls

    w = 1 / y
    used = X.any(axis=0)
    coef = np.zeros(X.shape[1])
    coef[used] = nnls(X[:, used] * w[:, None], y * w)[0]
    return coef


def main() -> None:
    from bench.artifacts.cache import default_root
    from bench.estimate.analysis import analyse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cores", default="qemu-cortex-m4f")
    args = p.parse_args()
    os.environ.setdefault("EDGEBENCH_THIRD_PARTY", str(SHARED / "third_party"))
    work = default_root() / "layer-costs"
    cores = args.cores.split(",")
    counts = emulated_run(work, cores)
    X = {name: features(analyse((work / "models" / f"{name}.tflite").read_bytes()))
         for name in LAYERS}
    for core in cores:
        names = [n for n in LAYERS if (n, core) in counts]
        y = np.array([counts[(n, core)] for n in names])
        coef = fit(np.array([X[n] for n in names]), y)
        unit = coef[FEATURES.index("macs.conv")] or 1.0
        print(f"\n{core}: {len(names)} single-layer models")
        for f, v in zip(FEATURES, coef, strict=True):
            print(f"  {f:22s} {v:12.2f} instructions {v / unit:10.2f} conv MACs")
        for n, obs in zip(names, y, strict=True):
            pred = float(X[n] @ coef)
            print(f"    {n:30s} {obs:12,.0f} {pred:12,.0f} {(pred / obs - 1) * 100:+6.1f} %")


if __name__ == "__main__":
    main()
