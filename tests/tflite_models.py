"""Tiny real .tflite models and data sets for runner tests, built once per test process.

A Dense 27→128→64→5 classifier (12,165 parameters) trained briefly on a synthetic, learnable
task, converted to float32, float16-weight and full-int8 models; separately (its conversion is
slow) a small LSTM regressor whose state persists across invokes unless reset. Also the MLPerf
Tiny reference models in ``/work/shared`` when present.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bench.datasets.base import Dataset

SHARED = Path(__file__).resolve().parents[2] / "shared"
MLPERF = SHARED / "models" / "mlperf_tiny"


def mlperf_model(name: str) -> Path:
    """Path of an MLPerf Tiny reference model; skips the test when it is absent."""
    path = MLPERF / name
    if not path.is_file():
        pytest.skip(f"MLPerf Tiny model {name} not found in {MLPERF}")
    return path


@dataclass(frozen=True)
class TinyModels:
    dense_f32: Path
    dense_f16: Path
    dense_int8: Path
    classification: Path  # saved Dataset for the dense models
    keras_accuracy: float  # the Keras model's own test accuracy


@dataclass(frozen=True)
class TinyLSTM:
    model: Path
    regression: Path  # saved Dataset
    keras_pred: np.ndarray  # the Keras model's test predictions (stateless)


def _classification(seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((27, 5))
    x = rng.standard_normal((600, 27)).astype(np.float32)
    y = (x @ w).argmax(axis=1).astype(np.int64)
    return Dataset("classification", x[:400], y[:400], x[400:500], y[400:500], x[500:],
                   y[500:], info={"classes": 5})


def _regression(seed: int = 1) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((120, 12, 3)).astype(np.float32)
    y = x[:, :, 0].mean(axis=1).astype(np.float32)
    return Dataset("regression", x[:60], y[:60], x[60:90], y[60:90], x[90:], y[90:])


def _tf() -> tuple[object, object]:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    import tf_keras

    return tf, tf_keras


def _convert(path: Path, keras_model: object,
             configure: Callable[[object], None] | None = None) -> Path:
    tf, _ = _tf()
    conv = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if configure is not None:
        configure(conv)
    with warnings.catch_warnings():  # "Statistics for quantized inputs were expected"
        warnings.simplefilter("ignore", UserWarning)
        path.write_bytes(conv.convert())
    return path


@functools.cache
def build(directory: Path) -> TinyModels:
    """Train and convert the dense models into ``directory`` (cached per process)."""
    tf, tf_keras = _tf()
    directory.mkdir(parents=True, exist_ok=True)
    tf_keras.utils.set_random_seed(0)
    ds = _classification()
    layers = tf_keras.layers
    model = tf_keras.Sequential([
        layers.Input((27,)),
        layers.Dense(128, activation="relu", bias_initializer="random_normal"),
        layers.Dense(64, activation="relu", bias_initializer="random_normal"),
        layers.Dense(5, activation="softmax", bias_initializer="random_normal"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(ds.x_train, ds.y_train, epochs=15, batch_size=32, verbose=0)
    keras_accuracy = float((model.predict(ds.x_test, verbose=0).argmax(1) == ds.y_test).mean())

    def fp16(conv: object) -> None:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]

    def int8(conv: object) -> None:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([ds.x_train[i:i + 1]] for i in range(100))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int8

    f32 = _convert(directory / "dense_f32.tflite", model)
    f16 = _convert(directory / "dense_f16.tflite", model, fp16)
    i8 = _convert(directory / "dense_int8.tflite", model, int8)
    ds.save(directory / "classification.npz")
    return TinyModels(f32, f16, i8, directory / "classification.npz", keras_accuracy)


@functools.cache
def build_lstm(directory: Path) -> TinyLSTM:
    """An untrained batch-1 LSTM regressor (its converted state is variable tensors)."""
    _, tf_keras = _tf()
    directory.mkdir(parents=True, exist_ok=True)
    tf_keras.utils.set_random_seed(0)
    reg = _regression()
    layers = tf_keras.layers
    lstm = tf_keras.Sequential([layers.Input((12, 3), batch_size=1), layers.LSTM(8),
                                layers.Dense(1)])
    path = _convert(directory / "lstm_f32.tflite", lstm)
    reg.save(directory / "regression.npz")
    return TinyLSTM(path, directory / "regression.npz",
                    lstm.predict(reg.x_test, batch_size=1, verbose=0).reshape(-1))


@dataclass(frozen=True)
class RefusedByTFLM:
    """Variants of one small CNN that TFLite Micro cannot run, and one it can."""

    hybrid: Path  # dynamic-range int8: float inputs, int8 weights
    int4_weight_only: Path  # int4 constants DEQUANTIZEd to float
    int4_channelwise: Path  # int4 filters, int8 activations, a scale per output channel
    int4_tensorwise: Path  # the same with one scale per tensor (TFLite Micro runs it)


@functools.cache
def build_refused(directory: Path) -> RefusedByTFLM:
    """Convert an untrained 8×8 CNN with the real converter and ai-edge-quantizer."""
    from bench.variants.int4 import quantize

    tf, tf_keras = _tf()
    directory.mkdir(parents=True, exist_ok=True)
    tf_keras.utils.set_random_seed(0)
    layers = tf_keras.layers
    model = tf_keras.Sequential([layers.Input((8, 8, 1)), layers.Conv2D(4, 3, activation="relu"),
                                 layers.Flatten(), layers.Dense(10)])

    def dynamic(conv: object) -> None:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]

    hybrid = _convert(directory / "cnn_dynamic_int8.tflite", model, dynamic)
    f32 = _convert(directory / "cnn_f32.tflite", model).read_bytes()
    rng = np.random.default_rng(0)
    from ai_edge_litert.interpreter import Interpreter

    key, signature = next(iter(Interpreter(model_content=f32).get_signature_list().items()))
    calibration = {key: [{signature["inputs"][0]: rng.standard_normal((1, 8, 8, 1))
                          .astype(np.float32)} for _ in range(10)]}
    out = {}
    for name, recipe, granularity in (("w4", "weight_only", "channelwise"),
                                      ("w4a8c", "static_int8_activations", "channelwise"),
                                      ("w4a8t", "static_int8_activations", "tensorwise")):
        path = directory / f"cnn_{name}.tflite"
        path.write_bytes(quantize(f32, recipe, granularity,
                                  None if recipe == "weight_only" else calibration))
        out[name] = path
    return RefusedByTFLM(hybrid, out["w4"], out["w4a8c"], out["w4a8t"])
