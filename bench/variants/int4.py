"""``int4``: 4-bit weights with ``ai-edge-quantizer`` (AEQ), applied to a float ``.tflite``.

Recipes (all weights symmetric int4, packed two per byte):

* ``weight_only`` (AEQ ``weight_only_wi4_afp32``): int4 constants, DEQUANTIZE to float before
  each kernel; float activations and I/O. Runs in LiteRT; TFLite Micro's DEQUANTIZE has no
  int4 input.
* ``dynamic`` (AEQ ``dynamic_wi4_afp32``): int4 weights fed straight to the kernels, float
  activations quantized on the fly. Runs in LiteRT; TFLite Micro has no float-input/int4-filter
  kernels.
* ``static_int8_activations``: int4 weights and static int8 activations calibrated on a data
  split, int8 input and output (like ``quantize: {mode: int8}``). Per-tensor weight scales by
  default: TFLite Micro's FULLY_CONNECTED accepts int4 filters with int8 inputs, but only
  per-tensor ones (``granularity: channelwise`` makes a model TFLite Micro refuses).

The step converts the Keras model to fp32 first when no earlier step produced a ``.tflite``,
then replaces ``state.tflite`` with the quantized model. With ``qat`` it first fine-tunes the
Keras model with its weights on the int4 grid of the chosen granularity
(:mod:`bench.variants.int4_qat`), so the quantized model computes what was trained.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

from pydantic import Field

from bench.artifacts.tflite_info import inspect
from bench.errors import Strict
from bench.variants.base import BuildState, StepError, VariantStep
from bench.variants.int4_qat import Int4QatParams, fine_tune
from bench.variants.quantize import (
    Calibration,
    convert,
    converter_reason,
    generated_data,
    model_input_shape,
    representative_data,
)

log = logging.getLogger(__name__)

Recipe = Literal["weight_only", "dynamic", "static_int8_activations"]
Granularity = Literal["channelwise", "tensorwise"]
#: What each recipe does with activations (for the record).
ACTIVATIONS = {"weight_only": "float32 (weights dequantized before each kernel)",
               "dynamic": "float32, quantized on the fly by the kernels",
               "static_int8_activations": "int8, calibrated; int8 input and output"}
#: The AEQ named recipe a choice equals with channelwise weights.
AEQ_NAMED = {"weight_only": "weight_only_wi4_afp32", "dynamic": "dynamic_wi4_afp32"}
#: Tensor types that mean the input model is already quantized.
QUANTIZED_DTYPES = {"int8", "uint8", "int16", "int4", "float16"}


class Int4Params(Strict):
    """Parameters of the ``int4`` step."""

    recipe: Recipe = "weight_only"
    #: Weight scales per output channel or per tensor. Default: channelwise for ``weight_only``
    #: and ``dynamic`` (AEQ's recipes), tensorwise for ``static_int8_activations`` (the only
    #: int4 form TFLite Micro runs).
    granularity: Granularity | None = None
    #: Representative data of ``static_int8_activations`` (ignored by the other recipes).
    calibration: Calibration = Field(default_factory=Calibration)
    #: Quantization-aware fine-tuning on the int4 grid before quantizing (None: post-training
    #: only). Needs a Keras model and a data set.
    qat: Int4QatParams | None = None

    def resolved_granularity(self) -> Granularity:
        if self.granularity is not None:
            return self.granularity
        return "tensorwise" if self.recipe == "static_int8_activations" else "channelwise"


def aeq_version() -> str | None:
    try:
        return version("ai-edge-quantizer")
    except PackageNotFoundError:
        return None


def float_model(state: BuildState) -> bytes:
    """The float32 ``.tflite`` to quantize: the state's, or the Keras model converted."""
    if state.tflite is None:
        if state.keras_model is None:
            raise StepError("int4 needs a Keras model or a float .tflite, and the build state "
                            "has neither")
        state.tflite = convert(state.keras_model, model_input_shape(state.keras_model), "fp32")
        return state.tflite

    quantized = QUANTIZED_DTYPES.intersection(inspect(state.tflite).dtypes)
    if quantized:
        raise StepError(f"int4 needs a float32 model, but the current .tflite already holds "
                        f"{', '.join(sorted(quantized))} tensors (put int4 before quantize)")
    return state.tflite


def build_recipe(recipe: Recipe, granularity: Granularity) -> Any:
    """The AEQ recipe for every supported op: int4 weights, activations by ``recipe``."""
    from ai_edge_quantizer import qtyping, recipe_manager

    manager = recipe_manager.RecipeManager()
    ops, gran = qtyping.TFLOperationName.ALL_SUPPORTED, getattr(qtyping.QuantGranularity,
                                                                granularity.upper())
    if recipe == "weight_only":
        manager.add_weight_only_config(regex=".*", operation_name=ops, num_bits=4,
                                       granularity=gran)
    elif recipe == "dynamic":
        manager.add_dynamic_config(regex=".*", operation_name=ops, num_bits=4, granularity=gran)
    else:
        manager.add_static_config(regex=".*", operation_name=ops, activation_num_bits=8,
                                  weight_num_bits=4, weight_granularity=gran)
    return manager.get_quantization_recipe()


def calibration_data(state: BuildState, tflite: bytes, calibration: Calibration
                     ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """AEQ calibration samples for the model's first signature, and the record's facts."""
    from ai_edge_litert.interpreter import Interpreter


    signatures = Interpreter(model_content=tflite).get_signature_list()
    if not signatures:
        raise StepError("int4 static_int8_activations: the model has no signature to calibrate")
    key, signature = next(iter(signatures.items()))
    names = signature["inputs"]
    if len(names) != 1:
        raise StepError(f"int4 static_int8_activations supports one model input, not "
                        f"{len(names)}")
    if state.dataset is None:
        shape = inspect(tflite).inputs[0].shape[1:]
        generate, count = generated_data(shape, calibration.samples, state.seed)
        facts = {"split": "generated", "samples": count,
                 "selection": "standard normal inputs (no data set)"}
    else:
        generate, count = representative_data(state.dataset, calibration)
        facts = {"split": calibration.split, "samples": count,
                 "selection": calibration.selection}
    return {key: [{names[0]: sample[0]} for sample in generate()]}, facts


def quantize(tflite: bytes, recipe: Recipe, granularity: Granularity,
             calibration: dict[str, list[dict[str, Any]]] | None = None) -> bytes:
    """Run AEQ on ``tflite``; its progress bars and debug warnings are silenced."""
    try:
        from ai_edge_quantizer import quantizer
    except ImportError as exc:
        raise StepError("int4 needs ai-edge-quantizer (pip install ai-edge-quantizer)") from exc
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore", UserWarning)
            aeq = quantizer.Quantizer(tflite, build_recipe(recipe, granularity))
            result = aeq.calibrate(calibration) if aeq.need_calibration else None
            out = aeq.quantize(result, enable_progress_report=False).quantized_model
    except Exception as exc:  # AEQ raises ValueError, RuntimeError, KeyError… on unsupported graphs
        reason = converter_reason(exc)
        raise StepError(f"ai-edge-quantizer failed (int4 {recipe}): {reason}") from exc
    if not out:
        raise StepError(f"ai-edge-quantizer produced no model (int4 {recipe})")
    return bytes(out)


def apply(state: BuildState, params: Int4Params) -> None:
    """Replace ``state.tflite`` by its int4-weight version."""
    granularity = params.resolved_granularity()
    if params.qat is not None:
        if state.tflite is not None:
            raise StepError("int4 qat needs the Keras model: it cannot retrain a .tflite "
                            "(a .tflite model entry, or an earlier converting step)")
        fine_tune(state, params.qat, granularity)
    source = float_model(state)
    calibration = None
    if params.recipe == "static_int8_activations":
        calibration, facts = calibration_data(state, source, params.calibration)
        state.info["calibration"] = facts
    state.tflite = quantize(source, params.recipe, granularity, calibration)
    named = AEQ_NAMED.get(params.recipe) if granularity == "channelwise" else None
    state.info["int4"] = {"recipe": params.recipe, "granularity": granularity,
                          "weights": f"int4 symmetric, {granularity} scales",
                          "activations": ACTIVATIONS[params.recipe],
                          "aeq_recipe": named or "custom",
                          "qat": params.qat is not None,
                          "tool": f"ai-edge-quantizer {aeq_version()}",
                          "float_size": len(source), "size": len(state.tflite)}
    log.info("int4 %s (%s): %d → %d bytes", params.recipe, granularity, len(source),
             len(state.tflite))


INT4 = VariantStep(
    name="int4",
    apply=apply,
    phase="convert",
    params=Int4Params,
    description="4-bit weights with ai-edge-quantizer: weight_only, dynamic, or "
                "static_int8_activations (int8 I/O; the form TFLite Micro runs); qat: "
                "quantization-aware fine-tuning on the int4 grid first.",
)
