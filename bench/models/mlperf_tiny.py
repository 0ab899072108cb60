"""The MLPerf Tiny reference architectures (mlcommons/tiny ``benchmark/training/*``).

* ``ds_cnn_kws``: keyword spotting DS-CNN, 49×10×1 MFCC → 12 classes;
* ``mobilenet_v1_025_vww``: visual wake words MobileNetV1 (α = 0.25), 96×96×3 → 2 classes;
* ``resnet8_ic``: image classification ResNet-8 (CIFAR-10), 32×32×3 → 10 classes;
* ``fc_autoencoder_ad``: anomaly detection FC autoencoder (ToyADMOS), 640 → 640.

Layers, kernels, strides and paddings follow the reference Keras code and the published trained
``.tflite`` graphs (e.g. ResNet-8 has 16 base filters, the KWS pool spans the whole 25×5 map):
converted to int8, the parameter and MAC counts equal the reference models'. Batch
normalisation folds into the preceding convolution or dense layer on conversion; dropout
vanishes.

Every builder ends with :func:`settle`, a data-dependent start on standard-normal inputs: batch
norm statistics and the biases of layers no batch norm follows are set so that activations keep
their scale. An untrained model then converts like a trained one: the int8 ranges are sane
(without it the untrained VWW model's activations shrink to ~1e-6, and TFLite Micro aborts in
SOFTMAX's prepare) and no bias is all zero (the converter drops all-zero biases). Training
overwrites the statistics; the kernels keep the reference's initialisers.

Shapes: the ``input_shape`` and ``classes`` parameters (defaults = the reference) shape the model
when a suite gives no data set — ``default_io`` hands them to ``build`` and the model is built
untrained (seeded random weights: right for size, arena and latency, not for accuracy). With a
data set, ``build`` gets the data set's input shape and outputs and those parameters are unused.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import Field

from bench.errors import Strict
from bench.models.base import ModelBuilder
from bench.models.train import import_keras

Shape = tuple[int, ...]
SETTLE_SAMPLES = 32
SETTLE_SEED = 0


def _check(input_shape: Shape, outputs: int, rank: int, name: str) -> Shape:
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != rank or any(d < 1 for d in shape):
        raise ValueError(f"{name}: expects inputs of rank {rank} (no batch axis) with positive "
                         f"sizes, got shape {tuple(input_shape)}")
    if outputs < 1:
        raise ValueError(f"{name}: outputs must be >= 1, got {outputs}")
    return shape


def _regularizer(keras: Any, weight_decay: float) -> Any:
    return keras.regularizers.l2(weight_decay) if weight_decay > 0 else None


def _bn_relu(keras: Any, x: Any) -> Any:
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.Activation("relu")(x)


def _classifier_head(keras: Any, x: Any, outputs: int, **dense: Any) -> Any:
    """Average pool over the whole feature map → flatten → Dense → softmax (as the references;
    the softmax is its own layer so that :func:`settle` can centre the logits)."""
    x = keras.layers.AveragePooling2D(pool_size=tuple(int(d) for d in x.shape[1:3]))(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(outputs, name="logits", **dense)(x)
    return keras.layers.Activation("softmax", name="probabilities")(x)


def settle(model: Any, centre: tuple[str, ...] = (), samples: int = SETTLE_SAMPLES,
           seed: int = SETTLE_SEED) -> Any:
    """Data-dependent start of a fresh model, on ``samples`` standard-normal inputs.

    Each batch-norm layer's moving mean and variance become those of its input (one forward
    pass in training mode with momentum 0 and dropout off), then each layer named in ``centre``
    (conv or dense layers no batch norm follows) gets the bias that centres its output. Other
    weights are untouched. Returns ``model``.
    """
    keras = import_keras()
    x = np.random.default_rng(seed).standard_normal(
        (samples, *model.input_shape[1:])).astype(np.float32)
    norms = [la for la in model.layers if isinstance(la, keras.layers.BatchNormalization)]
    drops = [la for la in model.layers if isinstance(la, keras.layers.Dropout)]
    saved = [la.momentum for la in norms], [la.rate for la in drops]
    try:
        for la in norms:
            la.momentum = 0.0
        for la in drops:
            la.rate = 0.0
        model(x, training=True)
    finally:
        for la, momentum in zip(norms, saved[0], strict=True):
            la.momentum = momentum
        for la, rate in zip(drops, saved[1], strict=True):
            la.rate = rate
    for name in centre:
        layer = model.get_layer(name)
        out = np.asarray(keras.Model(model.inputs, layer.output)(x, training=False))
        mean = out.reshape(-1, out.shape[-1]).mean(axis=0)
        layer.bias.assign(layer.bias.numpy() - mean.astype(np.float32))
    return model


# --- keyword spotting: DS-CNN ------------------------------------------------------------------

class DsCnnParams(Strict):
    """``ds_cnn_kws``: a (10, 4) stride-2 conv, then ``blocks`` depthwise-separable blocks."""

    # 49 frames × 10 MFCC, used without data
    input_shape: tuple[int, int, int] = Field((49, 10, 1), strict=False)
    classes: int = Field(12, ge=2)  # 10 words + silence + unknown, used without data
    filters: int = Field(64, ge=1)
    blocks: int = Field(4, ge=0)
    weight_decay: float = Field(1e-4, ge=0.0)


def build_ds_cnn(params: DsCnnParams, input_shape: Shape, outputs: int) -> Any:
    """Conv (10×4, /2) → ``blocks`` × [DW 3×3 → Conv 1×1] → avg pool → Dense softmax."""
    shape = _check(input_shape, outputs, 3, "ds_cnn_kws")
    keras = import_keras()
    layers, reg = keras.layers, _regularizer(keras, params.weight_decay)
    inputs = keras.Input(shape=shape, name="mfcc")
    x = layers.Conv2D(params.filters, (10, 4), strides=(2, 2), padding="same",
                      kernel_regularizer=reg)(inputs)
    x = layers.Dropout(0.2)(_bn_relu(keras, x))
    for _ in range(params.blocks):
        x = layers.DepthwiseConv2D((3, 3), padding="same", depthwise_regularizer=reg)(x)
        x = _bn_relu(keras, x)
        x = layers.Conv2D(params.filters, (1, 1), padding="same", kernel_regularizer=reg)(x)
        x = _bn_relu(keras, x)
    x = layers.Dropout(0.4)(x)
    model = keras.Model(inputs, _classifier_head(keras, x, outputs), name="ds_cnn_kws")
    return settle(model, centre=("logits",))


# --- visual wake words: MobileNetV1 ------------------------------------------------------------

#: (pointwise filters at α = 1, depthwise stride) of the 13 depthwise-separable blocks.
MOBILENET_V1_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)


class MobileNetV1Params(Strict):
    """``mobilenet_v1_025_vww``: MobileNetV1 with width multiplier ``alpha``."""

    input_shape: tuple[int, int, int] = Field((96, 96, 3), strict=False)  # used without data
    classes: int = Field(2, ge=2)  # person / no person, used without data
    alpha: float = Field(0.25, gt=0.0, le=1.0)
    weight_decay: float = Field(1e-4, ge=0.0)


def build_mobilenet_v1(params: MobileNetV1Params, input_shape: Shape, outputs: int) -> Any:
    """Conv 3×3 /2 (32α) → 13 × [DW 3×3 → Conv 1×1] → avg pool → Dense softmax; 'same' pads."""
    shape = _check(input_shape, outputs, 3, "mobilenet_v1_025_vww")
    keras = import_keras()
    layers, reg = keras.layers, _regularizer(keras, params.weight_decay)
    init = "he_normal"

    def width(filters: int) -> int:
        return max(1, int(filters * params.alpha))

    inputs = keras.Input(shape=shape, name="image")
    x = layers.Conv2D(width(32), 3, strides=2, padding="same", kernel_initializer=init,
                      kernel_regularizer=reg)(inputs)
    x = _bn_relu(keras, x)
    for filters, stride in MOBILENET_V1_BLOCKS:
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same",
                                   depthwise_initializer=init, depthwise_regularizer=reg)(x)
        x = _bn_relu(keras, x)
        x = layers.Conv2D(width(filters), 1, padding="same", kernel_initializer=init,
                          kernel_regularizer=reg)(x)
        x = _bn_relu(keras, x)
    model = keras.Model(inputs, _classifier_head(keras, x, outputs), name="mobilenet_v1_025_vww")
    return settle(model, centre=("logits",))


# --- image classification: ResNet-8 ------------------------------------------------------------

class ResNet8Params(Strict):
    """``resnet8_ic``: three residual stacks of ``filters``, 2×, 4× filters."""

    # CIFAR-10 images, used without data
    input_shape: tuple[int, int, int] = Field((32, 32, 3), strict=False)
    classes: int = Field(10, ge=2)  # used without data
    filters: int = Field(16, ge=1)  # the trained reference model's; its keras_model.py has 26
    weight_decay: float = Field(1e-4, ge=0.0)


def build_resnet8(params: ResNet8Params, input_shape: Shape, outputs: int) -> Any:
    """Conv 3×3 → 3 residual stacks (the 2nd and 3rd halve the map, 1×1 conv shortcut) →
    avg pool → Dense softmax."""
    shape = _check(input_shape, outputs, 3, "resnet8_ic")
    keras = import_keras()
    layers, reg = keras.layers, _regularizer(keras, params.weight_decay)

    def conv(filters: int, kernel: int, stride: int, x: Any, name: str | None = None) -> Any:
        return layers.Conv2D(filters, kernel, strides=stride, padding="same", name=name,
                             kernel_initializer="he_normal", kernel_regularizer=reg)(x)

    inputs = keras.Input(shape=shape, name="image")
    x = _bn_relu(keras, conv(params.filters, 3, 1, inputs))
    for stack in range(3):
        filters, stride = params.filters * 2 ** stack, (1 if stack == 0 else 2)
        y = _bn_relu(keras, conv(filters, 3, stride, x))
        y = layers.BatchNormalization()(conv(filters, 3, 1, y))
        if stack > 0:  # match the halved map and doubled width on the identity path
            x = conv(filters, 1, stride, x, name=f"shortcut{stack}")
        x = layers.Activation("relu")(layers.add([x, y]))
    head = _classifier_head(keras, x, outputs, kernel_initializer="he_normal")
    model = keras.Model(inputs, head, name="resnet8_ic")
    return settle(model, centre=("shortcut1", "shortcut2", "logits"))


# --- anomaly detection: FC autoencoder ---------------------------------------------------------

class FcAutoencoderParams(Strict):
    """``fc_autoencoder_ad``: ``layers`` × Dense ``hidden`` each side of a ``bottleneck``."""

    # 5 frames × 128 log-mel bins, used without data
    input_shape: tuple[int] = Field((640,), strict=False)
    hidden: int = Field(128, ge=1)
    bottleneck: int = Field(8, ge=1)
    layers: int = Field(4, ge=1)


def build_fc_autoencoder(params: FcAutoencoderParams, input_shape: Shape, outputs: int) -> Any:
    """[Dense → BN → ReLU] × layers → bottleneck → × layers → Dense ``outputs`` (linear)."""
    shape = _check(input_shape, outputs, 1, "fc_autoencoder_ad")
    if outputs != shape[0]:
        raise ValueError(f"fc_autoencoder_ad reconstructs its input: outputs ({outputs}) must "
                         f"equal the input size ({shape[0]})")
    keras = import_keras()
    inputs = keras.Input(shape=shape, name="features")
    x = inputs
    widths = [params.hidden] * params.layers + [params.bottleneck] + \
        [params.hidden] * params.layers
    for units in widths:
        x = _bn_relu(keras, keras.layers.Dense(units)(x))
    x = keras.layers.Dense(outputs, name="reconstruction")(x)
    model = keras.Model(inputs, x, name="fc_autoencoder_ad")
    return settle(model, centre=("reconstruction",))


def _classifier_io(params: Any) -> tuple[Shape, int]:
    return tuple(params.input_shape), int(params.classes)


def _autoencoder_io(params: FcAutoencoderParams) -> tuple[Shape, int]:
    return tuple(params.input_shape), math.prod(params.input_shape)


DS_CNN_KWS = ModelBuilder(
    name="ds_cnn_kws", build=build_ds_cnn, tasks=("classification",), params=DsCnnParams,
    default_io=_classifier_io,
    description="MLPerf Tiny keyword spotting DS-CNN: 49×10×1 MFCC → 12 classes.",
)
MOBILENET_V1_025_VWW = ModelBuilder(
    name="mobilenet_v1_025_vww", build=build_mobilenet_v1, tasks=("classification",),
    params=MobileNetV1Params, default_io=_classifier_io,
    description="MLPerf Tiny visual wake words MobileNetV1 α=0.25: 96×96×3 → 2 classes.",
)
RESNET8_IC = ModelBuilder(
    name="resnet8_ic", build=build_resnet8, tasks=("classification",), params=ResNet8Params,
    default_io=_classifier_io,
    description="MLPerf Tiny image classification ResNet-8: 32×32×3 → 10 classes.",
)
FC_AUTOENCODER_AD = ModelBuilder(
    name="fc_autoencoder_ad", build=build_fc_autoencoder, tasks=("anomaly",),
    params=FcAutoencoderParams, default_io=_autoencoder_io,
    description="MLPerf Tiny anomaly detection FC autoencoder: 640 → 8 → 640.",
)
