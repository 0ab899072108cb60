"""``digits_cnn``: a small image CNN — conv → pool per entry of ``filters``, then dense.

Built for the 8×8 ``digits`` images but shaped by whatever ``(height, width, channels)`` input it
is given. TensorFlow is imported inside the call.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from bench.errors import Strict
from bench.models.base import ModelBuilder
from bench.models.train import import_keras


class CnnParams(Strict):
    """Widths of ``digits_cnn``: one 3×3 convolution (+ 2×2 max-pool) per ``filters`` entry,
    then a hidden dense layer of ``dense`` units (0: none) before the softmax."""

    filters: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [8, 16],
                                                       min_length=1, max_length=4)
    dense: int = Field(32, ge=0)


def build_cnn(params: CnnParams, input_shape: tuple[int, ...], outputs: int) -> Any:
    """Conv 3×3 relu → MaxPool 2×2 per ``filters`` entry → Flatten → Dense ``dense`` relu →
    Dense ``outputs`` softmax."""
    if len(input_shape) != 3 or any(int(d) < 1 for d in input_shape):
        raise ValueError(f"digits_cnn: expects (height, width, channels) inputs, got shape "
                         f"{tuple(input_shape)}")
    if outputs < 2:
        raise ValueError(f"digits_cnn: a classifier needs at least 2 outputs, got {outputs}")
    side = min(int(input_shape[0]), int(input_shape[1]))
    if side < 2 ** len(params.filters):
        raise ValueError(f"digits_cnn: {len(params.filters)} pooling stages need inputs of at "
                         f"least {2 ** len(params.filters)} pixels a side, got {side}")
    keras = import_keras()
    layers: list[Any] = [keras.Input(shape=tuple(int(d) for d in input_shape), name="image")]
    for i, width in enumerate(params.filters):
        layers += [keras.layers.Conv2D(width, 3, padding="same", activation="relu",
                                       name=f"conv{i + 1}"),
                   keras.layers.MaxPooling2D(2, name=f"pool{i + 1}")]
    layers.append(keras.layers.Flatten())
    if params.dense:
        layers.append(keras.layers.Dense(params.dense, activation="relu", name="dense"))
    layers.append(keras.layers.Dense(outputs, activation="softmax", name="probabilities"))
    return keras.Sequential(layers, name="digits_cnn")


DIGITS_CNN = ModelBuilder(
    name="digits_cnn", build=build_cnn, tasks=("classification",), params=CnnParams,
    description="Small image CNN: (Conv 3×3 relu → MaxPool 2×2) per filters entry → Dense → "
                "softmax.",
    default_io=lambda params: ((8, 8, 1), 10),  # the digits images, 10 classes
)
