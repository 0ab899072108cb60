"""``digits_cnn_torch``: the ``digits_cnn`` architecture as a PyTorch module.

The same widths (:class:`~bench.models.cnn.CnnParams`): one 3×3 convolution (+ 2×2 max-pool) per
``filters`` entry, a hidden dense layer, softmax; and the same initial weights as Keras gives
``digits_cnn`` (Glorot-uniform kernels, zero biases) rather than PyTorch's defaults (Kaiming-
uniform with a = √5 and uniform biases), so that the two differ in framework, not in recipe.
PyTorch convolutions take channels first, so
the module's input is the data set's ``(height, width, channels)`` as ``(channels, height,
width)``; the conversion (:mod:`bench.models.imported`) hands the converted model back in the
data set's layout. PyTorch is imported inside the call (the ``torch`` extra).
"""

from __future__ import annotations

from typing import Any

from bench.models.base import ModelBuilder
from bench.models.cnn import CnnParams
from bench.models.extras import require


def build_torch_cnn(params: CnnParams, input_shape: tuple[int, ...], outputs: int) -> Any:
    """A ``torch.nn.Sequential`` for ``(height, width, channels)`` inputs (taken channels
    first) and ``outputs`` softmax units."""
    if len(input_shape) != 3 or any(int(d) < 1 for d in input_shape):
        raise ValueError(f"digits_cnn_torch: expects (height, width, channels) inputs, got shape "
                         f"{tuple(input_shape)}")
    if outputs < 2:
        raise ValueError(f"digits_cnn_torch: a classifier needs at least 2 outputs, got {outputs}")
    height, width, channels = (int(d) for d in input_shape)
    if min(height, width) < 2 ** len(params.filters):
        raise ValueError(f"digits_cnn_torch: {len(params.filters)} pooling stages need inputs of "
                         f"at least {2 ** len(params.filters)} pixels a side")
    nn = require("torch", "PyTorch models").nn
    layers: list[Any] = []
    for width_out in params.filters:
        layers += [nn.Conv2d(channels, width_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        channels, height, width = width_out, height // 2, width // 2
    layers.append(nn.Flatten())
    features = channels * height * width
    if params.dense:
        layers += [nn.Linear(features, params.dense), nn.ReLU()]
        features = params.dense
    layers += [nn.Linear(features, outputs), nn.Softmax(dim=-1)]
    for layer in layers:
        if isinstance(layer, nn.Conv2d | nn.Linear):  # Keras's initialisers
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


DIGITS_CNN_TORCH = ModelBuilder(
    name="digits_cnn_torch", build=build_torch_cnn, tasks=("classification",), params=CnnParams,
    description="digits_cnn in PyTorch (trained with torch, converted through ONNX); needs the "
                "torch extra.",
    version="2",  # 2: Keras's initial weights
    default_io=lambda params: ((8, 8, 1), 10),
    framework="pytorch",
)
