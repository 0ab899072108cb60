"""Quantization-aware fine-tuning for the ``int4`` step: 4-bit fake-quantized weights.

The grid is the one ai-edge-quantizer uses for symmetric int4 weights: scale = max |w| / 7 per
tensor or per output channel, values ``round(w / scale)`` clipped to [−8, 7] (max-abs scaling
uses −7…7). Training is the straight-through estimator: the forward and backward passes see the
weights on that grid, the optimizer's step lands on latent float weights, which are snapped back
to the grid after every batch. At the end the model holds the snapped weights, so the int4 step
quantizes them again onto the same grid (the scale is recomputed from the same max) and the
``.tflite`` computes what was trained.

Kernels of convolutions and dense layers (``kernel``, ``depthwise_kernel``,
``pointwise_kernel``) are trained this way; biases stay float (int32 in the converted model).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
from pydantic import Field

from bench.errors import Epochs
from bench.models.train import import_keras
from bench.variants.base import BuildState, StepError
from bench.variants.finetune import FineTune, clone, fit, require

log = logging.getLogger(__name__)

Granularity = Literal["channelwise", "tensorwise"]
#: Largest magnitude of a symmetric int4 weight under max-abs scaling.
QMAX = 7
QMIN = -8


class Int4QatParams(FineTune):
    """Fine-tuning settings of ``int4``'s ``qat`` (4-bit weights, straight-through): a trained
    model is fine-tuned, so the rate is a tenth of training's."""

    epochs: Epochs = 10
    learning_rate: float = Field(1e-4, gt=0.0)


def scale_axes(layer: Any, name: str, ndim: int) -> tuple[int, ...]:
    """Axes one scale covers per output channel: the spatial ones for a depthwise kernel (its
    (channel, multiplier) pairs are the outputs), all but the output axis otherwise — the
    second to last for a transposed convolution (kernel ``(…, out, in)``), the last for the
    rest."""
    if name == "depthwise_kernel":
        return (0, 1)
    output = ndim - 2 if "Transpose" in type(layer).__name__ else ndim - 1
    return tuple(a for a in range(ndim) if a != output)


def snap(weights: np.ndarray, axes: tuple[int, ...] | None) -> np.ndarray:
    """``weights`` on the symmetric int4 grid (``axes=None``: one scale per tensor)."""
    bound = np.max(np.abs(weights), axis=axes, keepdims=True)
    scale = np.maximum(bound, 1e-9) / QMAX
    return (np.clip(np.rint(weights / scale), QMIN, QMAX) * scale).astype(weights.dtype)


def quantized_kernels(model: Any) -> list[tuple[Any, tuple[int, ...]]]:
    """``(variable, per-channel axes)`` for each kernel the int4 step quantizes."""
    found = []
    for layer in model.layers:
        for name in ("kernel", "depthwise_kernel", "pointwise_kernel"):
            variable = getattr(layer, name, None)
            if variable is not None and getattr(variable, "trainable", False):
                found.append((variable, scale_axes(layer, name, len(variable.shape))))
    return found


def groups(values: np.ndarray, axes: tuple[int, ...] | None) -> list[np.ndarray]:
    """The values each scale covers (``axes=None``: one scale per tensor)."""
    if axes is None:
        return [values.ravel()]
    kept = [a for a in range(values.ndim) if a not in axes]
    channels = int(np.prod([values.shape[a] for a in kept]))
    return list(np.moveaxis(values, kept, range(len(kept))).reshape(channels, -1))


def levels(model: Any, granularity: Granularity) -> int:
    """The largest number of distinct values one scale covers, over the model's kernels."""
    most = 0
    for variable, axes in quantized_kernels(model):
        for group in groups(variable.numpy(), axes if granularity == "channelwise" else None):
            most = max(most, len(np.unique(group)))
    return most


def snapper(kernels: list[tuple[Any, tuple[int, ...] | None]]) -> Any:
    """A Keras callback: weights on the grid before training and after every batch, the
    optimizer's update carried by latent float copies (straight-through estimator)."""
    keras = import_keras()

    class Snap(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.latent = [variable.numpy() for variable, _ in kernels]
            self.snapped = [snap(w, axes) for w, (_, axes) in zip(self.latent, kernels,
                                                                  strict=True)]

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            for (variable, _), value in zip(kernels, self.snapped, strict=True):
                variable.assign(value)

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            for i, (variable, axes) in enumerate(kernels):
                self.latent[i] += variable.numpy() - self.snapped[i]
                self.snapped[i] = snap(self.latent[i], axes)
                variable.assign(self.snapped[i])

    return Snap()


def fine_tune(state: BuildState, params: Int4QatParams, granularity: Granularity) -> None:
    """Replace ``state.keras_model`` by a copy fine-tuned with int4 fake-quantized weights."""
    model, dataset = require(state, "int4 qat")
    tuned = clone(model)
    kernels = [(variable, axes if granularity == "channelwise" else None)
               for variable, axes in quantized_kernels(tuned)]
    if not kernels:
        raise StepError("int4 qat: the model has no convolution or dense kernel to train on "
                        "the int4 grid")
    facts = fit(tuned, dataset, params, state.seed, "int4 qat", callbacks=[snapper(kernels)])
    state.keras_model = tuned
    state.info["int4_qat"] = {"fine_tune": facts, "granularity": granularity,
                              "kernels": len(kernels), "levels": levels(tuned, granularity),
                              "method": "straight-through fake quantization of the kernels "
                                        "(symmetric int4, max-abs scale)"}
    log.info("int4 quantization-aware fine-tuning done: %s", facts["final"])
