"""``qat``: quantization-aware training (TensorFlow Model Optimization ``quantize_model``).

The step annotates the Keras model with fake-quantization, fine-tunes it, and leaves the QAT
model in the state. It does not convert: follow it with ``quantize: {mode: int8}``, which
converts the learned ranges to a full-integer model (the converter still wants a representative
data set for int8 input and output; the quantize step supplies it). Without a following
quantize step the final fp32 conversion keeps the fake quantization as QUANTIZE/DEQUANTIZE
pairs around float kernels, which is rarely what is wanted.
"""

from __future__ import annotations

import logging

from bench.variants.base import BuildState, StepError, VariantStep
from bench.variants.finetune import FineTune, clone, fit, import_tfmot, reason, require

log = logging.getLogger(__name__)


class QatParams(FineTune):
    """Parameters of the ``qat`` step: the fine-tuning settings."""


def apply(state: BuildState, params: QatParams) -> None:
    """Wrap ``state.keras_model`` for quantization-aware training and fine-tune it."""
    model, dataset = require(state, "qat")
    tfmot = import_tfmot()
    try:
        annotated = tfmot.quantization.keras.quantize_model(clone(model))
    except (ValueError, TypeError, RuntimeError) as exc:
        raise StepError(f"qat: tfmot cannot quantize this model: {reason(exc)}") from exc
    facts = fit(annotated, dataset, params, state.seed, "qat")
    state.keras_model = annotated
    state.info["qat"] = {"fine_tune": facts,
                         "note": "fake-quantized Keras model; a following quantize int8 step "
                                 "converts it"}
    log.info("quantization-aware training done: %s", facts["final"])


QAT = VariantStep(
    name="qat",
    apply=apply,
    phase="train",
    params=QatParams,
    description="Quantization-aware training (tfmot quantize_model) before int8 conversion.",
)
