"""``prune``: magnitude pruning (TensorFlow Model Optimization) with a polynomial-decay schedule.

The step wraps the Keras model with ``prune_low_magnitude``, fine-tunes it on the model's data
set while sparsity rises from ``initial_sparsity`` to ``final_sparsity`` between ``begin_step``
and ``end_step``, then strips the wrappers, leaving a plain Keras model for the next step (e.g.
``quantize``) or the final fp32 conversion. The converter keeps the zeros but stores them dense:
pruning shrinks the gzip size (``model_size_gzip``), not the flatbuffer.

:func:`tflite_sparsity` measures the fraction of zero weights in a converted model's prunable
tensors straight from the flatbuffer (no TensorFlow).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from bench.artifacts.tflite_info import check_identifier
from bench.variants.base import BuildState, StepError, VariantStep
from bench.variants.finetune import FineTune, clone, fit, import_tfmot, reason, require
from bench.variants.finetune import steps_per_epoch as _steps_per_epoch

log = logging.getLogger(__name__)

#: Pruning updates the schedule aims for when ``frequency`` is not given.
DEFAULT_UPDATES = 10

#: Operators whose weight inputs pruning targets (operator name → weight input indices).
#: LSTM: the input and recurrent weights of the fused op.
WEIGHT_INPUTS: dict[str, tuple[int, ...]] = {
    "FULLY_CONNECTED": (1,),
    "CONV_2D": (1,),
    "DEPTHWISE_CONV_2D": (1,),
    "CONV_3D": (1,),
    "TRANSPOSE_CONV": (1,),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": tuple(range(1, 9)),
}


class PruneParams(FineTune):
    """Parameters of the ``prune`` step (plus the fine-tuning settings of :class:`FineTune`)."""

    initial_sparsity: float = Field(0.3, ge=0.0, lt=1.0)
    final_sparsity: float = Field(0.7, ge=0.0, lt=1.0)
    begin_step: int = Field(0, ge=0)
    #: Default: the last fine-tuning step (epochs × steps per epoch − 1), so the final sparsity
    #: is reached within the fine-tuning.
    end_step: int | None = Field(None, ge=1)
    #: Steps between pruning updates. Default: the largest divisor of ``end_step − begin_step``
    #: giving at least 10 updates, so that an update falls exactly on ``end_step``.
    frequency: int | None = Field(None, ge=1)
    power: float = Field(3.0, gt=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> PruneParams:
        if self.final_sparsity < self.initial_sparsity:
            raise ValueError(f"final_sparsity ({self.final_sparsity}) is below initial_sparsity "
                             f"({self.initial_sparsity})")
        if self.end_step is not None and self.end_step <= self.begin_step:
            raise ValueError(f"end_step ({self.end_step}) must be after begin_step "
                             f"({self.begin_step})")
        return self


def default_frequency(span: int, updates: int = DEFAULT_UPDATES) -> int:
    """Largest divisor of ``span`` that still gives ``updates`` pruning updates (at least 1)."""
    limit = max(1, span // updates)
    return max(d for d in range(1, limit + 1) if span % d == 0)


def schedule(params: PruneParams, total_steps: int) -> dict[str, Any]:
    """The resolved polynomial-decay schedule for ``total_steps`` fine-tuning steps."""
    end = params.end_step if params.end_step is not None else total_steps - 1
    if end <= params.begin_step:
        raise StepError(f"prune: end_step {end} is not after begin_step {params.begin_step} "
                        f"({total_steps} fine-tuning steps); raise epochs or lower begin_step")
    if end >= total_steps:
        log.warning("prune: end_step %d is beyond the %d fine-tuning steps; the final sparsity "
                    "will not be reached", end, total_steps)
    frequency = params.frequency or default_frequency(end - params.begin_step)
    return {"kind": "polynomial_decay", "initial_sparsity": params.initial_sparsity,
            "final_sparsity": params.final_sparsity, "begin_step": params.begin_step,
            "end_step": end, "frequency": frequency, "power": params.power,
            "total_steps": total_steps}


def keras_sparsity(pruned: Any) -> dict[str, float]:
    """Fraction of zeros in the weights each pruning wrapper prunes, per layer and overall."""
    zeros = total = 0
    layers: dict[str, float] = {}
    for layer in pruned.layers:
        pairs = getattr(layer, "pruning_vars", None)
        if not pairs:
            continue
        lz = lt = 0
        for weight, _mask, _threshold in pairs:
            w = np.asarray(weight.numpy())
            lz, lt = lz + int(np.count_nonzero(w == 0)), lt + w.size
        layers[layer.name] = round(lz / lt, 6) if lt else 0.0
        zeros, total = zeros + lz, total + lt
    return {"overall": round(zeros / total, 6) if total else 0.0, "layers": layers}


def apply(state: BuildState, params: PruneParams) -> None:
    """Prune and fine-tune ``state.keras_model``; leaves the stripped model in the state."""
    model, dataset = require(state, "prune")
    tfmot = import_tfmot()
    total = params.epochs * _steps_per_epoch(dataset, params.batch_size)
    plan = schedule(params, total)
    decay = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=params.initial_sparsity, final_sparsity=params.final_sparsity,
        begin_step=plan["begin_step"], end_step=plan["end_step"], power=params.power,
        frequency=plan["frequency"])
    try:
        pruned = tfmot.sparsity.keras.prune_low_magnitude(clone(model), pruning_schedule=decay)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise StepError(f"prune: tfmot cannot wrap this model: {reason(exc)}") from exc
    facts = fit(pruned, dataset, params, state.seed, "prune",
                callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    measured = keras_sparsity(pruned)
    state.keras_model = tfmot.sparsity.keras.strip_pruning(pruned)
    state.info["prune"] = {"schedule": plan, "fine_tune": facts,
                           "keras_sparsity": measured["overall"],
                           "keras_sparsity_layers": measured["layers"]}
    log.info("pruned to %.3f sparsity (target %.3f)", measured["overall"], params.final_sparsity)


# --- sparsity of a converted model ------------------------------------------------------------

@dataclass(frozen=True)
class Sparsity:
    """Zero and total weight counts over a model's prunable tensors."""

    zeros: int
    total: int
    tensors: int

    @property
    def fraction(self) -> float:
        return self.zeros / self.total if self.total else 0.0


def _buffer_bytes(model: Any, data: bytes, index: int) -> bytes:
    buf = model.Buffers(index)
    if buf.Offset() > 1:  # large models keep buffers after the flatbuffer
        return bytes(data[buf.Offset(): buf.Offset() + buf.Size()])
    return buf.DataAsNumpy().tobytes() if buf.DataLength() else b""


def _values(raw: bytes, dtype: str, count: int) -> np.ndarray | None:
    """Stored values of a constant tensor (int4 unpacked, two per byte, low nibble first)."""
    if dtype == "int4":
        packed = np.frombuffer(raw, dtype=np.uint8)
        nibbles = np.stack([packed & 0x0F, packed >> 4], axis=1).reshape(-1)[:count]
        return np.where(nibbles > 7, nibbles.astype(np.int16) - 16, nibbles)
    numpy_types = {"float32": np.float32, "float16": np.float16, "float64": np.float64,
                   "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32,
                   "int64": np.int64}
    if dtype not in numpy_types:
        return None
    return np.frombuffer(raw, dtype=numpy_types[dtype])


def weight_sparsity(data: bytes) -> Sparsity:
    """Zero weights in the conv / fully-connected (and fused LSTM) weight tensors of ``data``.

    A weight fed through a DEQUANTIZE (float16 or weight-only int4/int8 models) is counted at
    its stored constant. Quantized values count as zero when they equal the zero point. Each
    tensor counts once, however many operators use it.
    """
    from ai_edge_litert import schema_py_generated as s


    check_identifier(data)
    dtype_names = {v: k.lower() for k, v in vars(s.TensorType).items() if k.isupper()}
    op_names = {v: k for k, v in vars(s.BuiltinOperator).items() if k.isupper()}
    model = s.Model.GetRootAs(bytes(data), 0)
    codes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        codes.append(op_names.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()), ""))
    zeros = total = tensors = 0
    for g in range(model.SubgraphsLength()):
        sub = model.Subgraphs(g)
        ops = [sub.Operators(j) for j in range(sub.OperatorsLength())]
        dequantized = {int(op.Outputs(0)): int(op.Inputs(0)) for op in ops
                       if codes[op.OpcodeIndex()] == "DEQUANTIZE" and op.OutputsLength()}
        seen: set[int] = set()
        for op in ops:
            for k in WEIGHT_INPUTS.get(codes[op.OpcodeIndex()], ()):
                if k >= op.InputsLength() or (t := int(op.Inputs(k))) < 0:
                    continue
                t = dequantized.get(t, t)
                if t in seen:
                    continue
                seen.add(t)
                counted = _count_zeros(model, data, sub.Tensors(t), dtype_names)
                if counted is not None:
                    zeros, total, tensors = zeros + counted[0], total + counted[1], tensors + 1
    return Sparsity(zeros, total, tensors)


def _count_zeros(model: Any, data: bytes, tensor: Any, dtype_names: dict[int, str]
                 ) -> tuple[int, int] | None:
    raw = _buffer_bytes(model, data, tensor.Buffer())
    if not raw:
        return None  # not a constant (a runtime input)
    shape = tensor.ShapeAsNumpy() if tensor.ShapeLength() else ()
    count = int(math.prod(int(d) for d in shape)) if len(shape) else 1
    values = _values(raw, dtype_names.get(tensor.Type(), ""), count)
    if values is None:
        return None
    q = tensor.Quantization()
    zero_point = int(q.ZeroPoint(0)) if q is not None and q.ZeroPointLength() == 1 else 0
    nonzero = int(np.count_nonzero(values != zero_point))
    if tensor.Sparsity() is not None:  # sparse encoding stores only the kept values
        return count - nonzero, count
    return len(values) - nonzero, len(values)


def tflite_sparsity(data: bytes) -> float:
    """Fraction of zero weights in a converted model's prunable tensors (conv / fully-connected
    weights, fused LSTM weights); 0.0 when the model has none."""
    return weight_sparsity(data).fraction


PRUNE = VariantStep(
    name="prune",
    apply=apply,
    phase="train",
    params=PruneParams,
    description="Magnitude pruning (tfmot, polynomial decay) with fine-tuning; wrappers stripped.",
)
