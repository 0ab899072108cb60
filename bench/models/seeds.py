"""The three seed models: an MLP classifier, a stacked-LSTM regressor and a dense autoencoder.

Each ``build(params, input_shape, outputs)`` returns an uncompiled tf-keras model; TensorFlow is
imported inside the call so that importing this module stays light.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from bench.errors import Strict
from bench.models.base import ModelBuilder
from bench.models.train import import_keras


def _check(input_shape: tuple[int, ...], outputs: int, rank: int | None, name: str) -> None:
    if not input_shape or any(int(d) < 1 for d in input_shape):
        raise ValueError(f"{name}: invalid input shape {input_shape}")
    if rank is not None and len(input_shape) != rank:
        raise ValueError(f"{name}: expects inputs of rank {rank} (no batch axis), "
                         f"got shape {tuple(input_shape)}")
    if outputs < 1:
        raise ValueError(f"{name}: outputs must be >= 1, got {outputs}")


class MlpParams(Strict):
    """Hidden layer widths of ``har_mlp``."""

    hidden: list[int] = Field(default_factory=lambda: [128, 64], min_length=1)


def build_mlp(params: MlpParams, input_shape: tuple[int, ...], outputs: int) -> Any:
    """Dense 128 relu → Dense 64 relu → Dense ``outputs`` softmax (inputs flattened if N-D)."""
    _check(input_shape, outputs, None, "har_mlp")
    keras = import_keras()
    layers: list[Any] = [keras.Input(shape=tuple(input_shape), name="features")]
    if len(input_shape) > 1:
        layers.append(keras.layers.Flatten())
    layers += [keras.layers.Dense(u, activation="relu") for u in params.hidden]
    layers.append(keras.layers.Dense(outputs, activation="softmax", name="probabilities"))
    return keras.Sequential(layers, name="har_mlp")


class LstmParams(Strict):
    """Units of the two stacked LSTM layers of ``hvac_lstm``."""

    units: tuple[int, int] = Field((32, 16), strict=False)


def build_lstm(params: LstmParams, input_shape: tuple[int, ...], outputs: int) -> Any:
    """LSTM 32 (return sequences) → LSTM 16 → Dense ``outputs`` (linear)."""
    _check(input_shape, outputs, 2, "hvac_lstm")
    keras = import_keras()
    first, second = params.units
    return keras.Sequential(
        [
            keras.Input(shape=tuple(input_shape), name="window"),
            keras.layers.LSTM(first, return_sequences=True),
            keras.layers.LSTM(second),
            keras.layers.Dense(outputs, name="forecast"),
        ],
        name="hvac_lstm",
    )


class AutoencoderParams(Strict):
    """Bottleneck width of ``volume_autoencoder``."""

    bottleneck: int = Field(4, ge=1)


def build_autoencoder(
    params: AutoencoderParams, input_shape: tuple[int, ...], outputs: int
) -> Any:
    """Dense 4 relu → Dense ``outputs`` sigmoid; ``outputs`` must equal the input size."""
    _check(input_shape, outputs, 1, "volume_autoencoder")
    if outputs != input_shape[0]:
        raise ValueError(f"volume_autoencoder reconstructs its input: outputs ({outputs}) must "
                         f"equal the input size ({input_shape[0]})")
    keras = import_keras()
    return keras.Sequential(
        [
            keras.Input(shape=tuple(input_shape), name="window"),
            keras.layers.Dense(params.bottleneck, activation="relu", name="encoder"),
            keras.layers.Dense(outputs, activation="sigmoid", name="decoder"),
        ],
        name="volume_autoencoder",
    )


HAR_MLP = ModelBuilder(
    name="har_mlp", build=build_mlp, tasks=("classification",), params=MlpParams,
    description="MLP classifier: Dense 128 relu → Dense 64 relu → softmax.",
    default_io=lambda params: ((27,), 5),  # 27 features, 5 activity classes
)
HVAC_LSTM = ModelBuilder(
    name="hvac_lstm", build=build_lstm, tasks=("regression",), params=LstmParams,
    description="Stacked LSTM regressor: LSTM 32 (sequences) → LSTM 16 → Dense 1.",
    default_io=lambda params: ((60, 14), 1),  # 60 steps × 14 features → temperature
)
VOLUME_AUTOENCODER = ModelBuilder(
    name="volume_autoencoder", build=build_autoencoder, tasks=("anomaly",),
    params=AutoencoderParams,
    description="Dense autoencoder: Dense 4 relu → Dense input-size sigmoid.",
    default_io=lambda params: ((10,), 10),  # windows of 10 readings
)
