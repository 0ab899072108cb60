"""``quantize``: convert the Keras model to a ``.tflite`` flatbuffer in one of five modes.

Every conversion traces the model as a concrete function with a fixed batch size of 1 (this is
what lets stacked LSTMs convert under tf-keras: they become fused UNIDIRECTIONAL_SEQUENCE_LSTM
ops), then runs ``tf.lite.TFLiteConverter``:

* ``fp32``: float32 weights and activations;
* ``fp16``: float16 weights (``target_spec.supported_types = [tf.float16]``), float I/O;
* ``dynamic_int8``: int8 weights, float activations (``Optimize.DEFAULT``, no data);
* ``int8``: full integer with int8 input and output, calibrated on a data split;
* ``int16x8``: int16 activations and int8 weights, calibrated, float I/O.

Integer modes quantize dense (fully connected) weights per output channel, the converter's
default; ``per_channel_dense: false`` makes them per tensor, as the MLPerf Tiny reference models
are. In TFLite Micro each per-channel dense layer keeps its per-channel multipliers and shifts in
the arena: the AD autoencoder's int8 arena is 17.0 KB per channel against 3.9 KB per tensor
(the reference ``ad01_int8.tflite``: 3.9 KB).

Converter failures become :class:`StepError` carrying the converter's own reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from bench.datasets.base import Dataset
from bench.errors import SampleCount, Strict
from bench.models.train import import_tf
from bench.variants.base import BuildState, StepError, VariantStep

log = logging.getLogger(__name__)

Mode = Literal["fp32", "fp16", "dynamic_int8", "int8", "int16x8"]
CALIBRATED_MODES = ("int8", "int16x8")
INTEGER_WEIGHT_MODES = ("dynamic_int8", "int8", "int16x8")
MAX_REASON_LINES = 6
MAX_REASON_CHARS = 800


class Calibration(Strict):
    """Where the representative data set of a calibrated mode comes from."""

    split: Literal["train", "validation", "test"] = "validation"
    samples: SampleCount = Field(200, ge=1)
    #: ``spread``: ``samples`` examples evenly spaced over the split, in order (the default:
    #: consecutive windows of a time series cover only a few hours and give poor ranges);
    #: ``first``: the first ``samples`` examples.
    selection: Literal["spread", "first"] = "spread"


class QuantizeParams(Strict):
    """Parameters of the ``quantize`` step."""

    mode: Mode
    calibration: Calibration = Field(default_factory=Calibration)
    #: Integer modes: dense weights per output channel (True) or per tensor (False).
    per_channel_dense: bool = True

    @model_validator(mode="after")
    def _per_channel_needs_integer_weights(self) -> QuantizeParams:
        if not self.per_channel_dense and self.mode not in INTEGER_WEIGHT_MODES:
            raise ValueError(f"per_channel_dense applies to integer weights (modes "
                             f"{', '.join(INTEGER_WEIGHT_MODES)}), not to mode {self.mode!r}")
        return self


def converter_reason(exc: BaseException) -> str:
    """The useful lines of a converter exception: deduplicated, notes dropped, bounded."""
    lines: list[str] = []
    for raw in str(exc).splitlines():
        line = raw.strip()
        if not line or line.startswith("<unknown>:0: note:"):
            continue
        line = line.removeprefix("<unknown>:0: error: ")
        if line not in lines:
            lines.append(line)
    if not lines:
        return type(exc).__name__
    reason = "; ".join(lines[:MAX_REASON_LINES])
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 1] + "…"
    return reason


def model_input_shape(model: Any) -> tuple[int, ...]:
    """The model's input shape without the batch axis; every dimension must be known."""
    shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise StepError(f"model input shape {shape} has unknown dimensions; cannot convert with "
                        "a fixed batch of 1")
    return tuple(int(d) for d in shape)


def representative_data(
    dataset: Dataset, calibration: Calibration
) -> tuple[Callable[[], Iterator[list[np.ndarray]]], int]:
    """A representative-dataset generator (batches of 1) and how many samples it yields."""
    x, _ = dataset.split(calibration.split)
    if len(x) == 0:
        raise StepError(f"calibration split {calibration.split!r} is empty")
    if calibration.selection == "first" or len(x) <= calibration.samples:
        x = x[: calibration.samples]
    else:
        x = x[np.linspace(0, len(x) - 1, calibration.samples).round().astype(int)]
    x = np.asarray(x, dtype=np.float32)

    def generate() -> Iterator[list[np.ndarray]]:
        for i in range(len(x)):
            yield [x[i: i + 1]]

    return generate, len(x)


def generated_data(input_shape: tuple[int, ...], samples: int, seed: int
                   ) -> tuple[Callable[[], Iterator[list[np.ndarray]]], int]:
    """Seeded standard-normal calibration inputs, for models without a data set (untrained
    reference architectures: the quantization ranges are then nominal)."""
    x = np.random.default_rng(seed).standard_normal((samples, *input_shape)).astype(np.float32)

    def generate() -> Iterator[list[np.ndarray]]:
        for i in range(samples):
            yield [x[i: i + 1]]

    return generate, samples


def convert(
    model: Any,
    input_shape: tuple[int, ...],
    mode: Mode = "fp32",
    representative: Callable[[], Iterator[list[np.ndarray]]] | None = None,
    per_channel_dense: bool = True,
) -> bytes:
    """Convert ``model`` (batch fixed to 1) in ``mode``; raises :class:`StepError` on failure."""
    if mode in CALIBRATED_MODES and representative is None:
        raise StepError(f"quantize mode {mode} needs a representative data set")
    tf = import_tf()
    fn = tf.function(lambda x: model(x, training=False))
    try:
        concrete = fn.get_concrete_function(tf.TensorSpec([1, *input_shape], tf.float32))
        # The converter saves its trackable object as a SavedModel; handing it the bare
        # variables instead of the Keras model skips re-tracing every layer (≈6× faster for
        # the stacked LSTM, same graph and outputs).
        holder = tf.Module()
        holder.model_variables = list(model.variables)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder)
        if mode == "fp16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif mode == "dynamic_int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        elif mode == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        elif mode == "int16x8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
        elif mode != "fp32":
            raise StepError(f"unknown quantize mode {mode!r}")
        if not per_channel_dense:
            converter._experimental_disable_per_channel_quantization_for_dense_layers = True
        flatbuffer = converter.convert()
    except StepError:
        raise
    except Exception as exc:  # converter errors come as RuntimeError, ConverterError, ValueError…
        reason = converter_reason(exc)
        log.warning("%s conversion failed: %s", mode, reason)
        raise StepError(f"TFLite converter failed ({mode}): {reason}") from exc
    log.info("converted to %s: %d bytes", mode, len(flatbuffer))
    return bytes(flatbuffer)


def convert_fp32(model: Any, input_shape: tuple[int, ...]) -> bytes:
    """The float32 ``.tflite`` of ``model`` (batch 1); used when no step converts."""
    return convert(model, tuple(input_shape), "fp32")


def apply(state: BuildState, params: QuantizeParams) -> None:
    """Set ``state.tflite`` to the model converted in ``params.mode``."""
    if state.keras_model is None:
        if state.tflite is not None:
            raise StepError("the model is already a .tflite file; quantize needs a Keras model")
        raise StepError("quantize needs a Keras model, and the build state has none")
    if state.tflite is not None:
        log.info("quantize replaces an earlier conversion")
    input_shape = model_input_shape(state.keras_model)
    representative = None
    if params.mode in CALIBRATED_MODES:
        if state.dataset is None:
            representative, count = generated_data(input_shape, params.calibration.samples,
                                                   state.seed)
            state.info["calibration"] = {"split": "generated", "samples": count,
                                         "selection": "standard normal inputs (no data set)"}
        else:
            representative, count = representative_data(state.dataset, params.calibration)
            state.info["calibration"] = {"split": params.calibration.split, "samples": count,
                                         "selection": params.calibration.selection}
    state.tflite = convert(state.keras_model, input_shape, params.mode, representative,
                           params.per_channel_dense)
    state.info["quantize"] = params.mode
    if not params.per_channel_dense:
        state.info["per_channel_dense"] = False


QUANTIZE = VariantStep(
    name="quantize",
    apply=apply,
    phase="convert",
    params=QuantizeParams,
    description="Convert to TFLite: fp32, fp16, dynamic_int8, int8 (int8 I/O) or int16x8.",
)
