"""Facts read straight from a .tflite flatbuffer: parameters, dtypes, ops, inputs and outputs.

Parsing uses the flatbuffer schema that ships with ``ai-edge-litert``; no interpreter is built,
so it is cheap and safe to call in the parent process.
"""

from __future__ import annotations

import gzip
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

TFLITE_IDENTIFIER = b"TFL3"


T = TypeVar("T")


@dataclass(frozen=True)
class TensorInfo:
    """A model input or output: shape (batch first), dtype name and per-tensor quantization.

    ``scale == 0.0`` means the tensor is not quantized (the TFLite interpreter's convention).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float = 0.0
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0


@dataclass(frozen=True)
class OperandInfo:
    """One input of an operator: dtype, whether it is a constant (a weight) and how many
    quantization scales it has (more than one: per channel)."""

    dtype: str
    constant: bool
    scales: int = 0


@dataclass(frozen=True)
class OpUse:
    """An operator and the kinds of its inputs (a model's distinct ones, in :class:`ModelInfo`);
    what decides whether a runtime has a kernel for it."""

    op: str
    inputs: tuple[OperandInfo | None, ...]  # None: an omitted optional input


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`inspect` found in a model."""

    size: int
    params: int  # elements of constant tensors (tensors whose buffer holds data)
    dtypes: tuple[str, ...]  # dtype names of all tensors, sorted
    ops: tuple[str, ...]  # operator names used, sorted (custom ops as ``CUSTOM:<code>``)
    op_counts: dict[str, int] = field(default_factory=dict)  # operator name → nodes
    inputs: tuple[TensorInfo, ...] = ()
    outputs: tuple[TensorInfo, ...] = ()
    has_float16: bool = False
    has_variables: bool = False  # variable tensors (e.g. LSTM state) persist across invokes
    subgraphs: int = 1
    #: bytes the non-constant tensors declare, summed (what an interpreter may allocate for
    #: them at most) and the largest of them: ``(name, shape, dtype, bytes)``
    declared_bytes: int = 0
    largest_tensor: tuple[str, tuple[int, ...], str, int] | None = None
    op_uses: tuple[OpUse, ...] = ()  # distinct (operator, input kinds), in first-use order


#: Bytes an element of each tensor type takes (unknown types count as 8).
ITEM_BYTES = {"float32": 4, "float16": 2, "float64": 8, "int32": 4, "uint32": 4, "int64": 8,
              "uint64": 8, "int16": 2, "uint16": 2, "int8": 1, "uint8": 1, "bool": 1,
              "int4": 1, "complex64": 8, "complex128": 16, "string": 1}


def tensor_bytes(shape: tuple[int, ...], dtype: str) -> int:
    """Bytes a tensor of ``shape`` declares (a dynamic ``-1`` dimension counts as 1)."""
    return math.prod(max(int(d), 1) for d in shape) * ITEM_BYTES.get(dtype, 8)


def memory_problem(info: ModelInfo, limit_mb: int, source: str = "the model") -> str | None:
    """Why ``info``'s declared tensors cannot fit a worker limited to ``limit_mb`` MB, or None:
    judged from the flatbuffer before any interpreter allocates them."""
    limit = limit_mb << 20
    if info.largest_tensor is not None and info.largest_tensor[3] > limit:
        name, shape, dtype, size = info.largest_tensor
        return (f"{source} declares tensor {name[:80]!r} of shape {list(shape)} {dtype} "
                f"({size / 2**20:,.0f} MB), over the worker memory limit of {limit_mb:,} MB "
                "(settings.memory_mb)")
    if info.declared_bytes > limit:
        return (f"{source} declares {info.declared_bytes / 2**20:,.0f} MB of tensors, over the "
                f"worker memory limit of {limit_mb:,} MB (settings.memory_mb)")
    return None


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _enum_names(enum_cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def model_size(data: bytes) -> int:
    """Size of the flatbuffer in bytes (what flash must hold)."""
    return len(data)


def model_size_gzip(data: bytes) -> int:
    """Size in bytes after gzip at level 9 (a hint of how much weights compress)."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


gzip_size = model_size_gzip  # the name bench.run.session uses


def check_identifier(data: bytes, source: str = "data") -> None:
    """Raise :class:`ValueError` unless ``data`` carries the ``TFL3`` file identifier."""
    if len(data) < 8:
        raise ValueError(f"{source} is not a valid .tflite flatbuffer: only {len(data)} bytes")
    if bytes(data[4:8]) != TFLITE_IDENTIFIER:
        raise ValueError(f"{source} is not a valid .tflite flatbuffer: file identifier "
                         f"{bytes(data[4:8])!r} is not {TFLITE_IDENTIFIER!r}")


def _numel(shape: Any) -> int:
    return int(math.prod(int(d) for d in shape)) if len(shape) else 1


def _tensor_info(tensor: Any, dtype_names: dict[int, str]) -> TensorInfo:
    scale, zero_point = 0.0, 0
    q = tensor.Quantization()
    if q is not None and q.ScaleLength() == 1:
        scale = float(q.Scale(0))
        zero_point = int(q.ZeroPoint(0)) if q.ZeroPointLength() else 0
    shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    return TensorInfo(name=(tensor.Name() or b"").decode(errors="replace"), shape=shape,
                      dtype=dtype_names.get(tensor.Type(), f"type{tensor.Type()}"),
                      scale=scale, zero_point=zero_point)


def _operand(tensor: Any, has_data: tuple[bool, ...], dtype_names: dict[int, str]) -> OperandInfo:
    buf = tensor.Buffer()
    q = tensor.Quantization()
    return OperandInfo(dtype=dtype_names.get(tensor.Type(), f"type{tensor.Type()}"),
                       constant=0 < buf < len(has_data) and has_data[buf]
                       and not tensor.IsVariable(),
                       scales=q.ScaleLength() if q is not None else 0)


@dataclass(frozen=True)
class Flatbuffer:
    """A .tflite flatbuffer opened through LiteRT's generated schema, with what every reader of
    its tables needs: the operator name of each operator code, dtype names, which buffers hold
    data. Readers (:func:`inspect`, the estimator's analysis) walk ``model`` themselves."""

    schema: Any
    model: Any
    op_names: tuple[str, ...]  # by operator code index, e.g. "CONV_2D", "CUSTOM:name"
    dtype_names: dict[int, str]  # TensorType value → "int8", "float32", …
    has_data: tuple[bool, ...]  # by buffer index: the buffer holds constant data

    def dtype(self, tensor: Any) -> str:
        return self.dtype_names.get(tensor.Type(), f"type{tensor.Type()}")


def read_flatbuffer(data: bytes) -> Flatbuffer:
    """Open ``data`` (unchecked: call through :func:`parse_guarded`)."""
    s = _schema()
    op_names = _enum_names(s.BuiltinOperator)
    model = s.Model.GetRootAs(data, 0)
    if model.SubgraphsLength() == 0:
        raise ValueError("no subgraph")
    codes: list[str] = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        # Codes < 127 live in the old int8 field; newer ones in builtin_code (deprecated = 127).
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if code == s.BuiltinOperator.CUSTOM:
            codes.append(f"CUSTOM:{(oc.CustomCode() or b'').decode(errors='replace')}")
        else:
            codes.append(op_names.get(code, f"BUILTIN_{code}"))
    has_data = tuple(model.Buffers(b).DataLength() > 0 or model.Buffers(b).Size() > 0
                     for b in range(model.BuffersLength()))
    return Flatbuffer(schema=s, model=model, op_names=tuple(codes), has_data=has_data,
                      dtype_names={k: v.lower() for k, v in _enum_names(s.TensorType).items()})


def _parse(data: bytes) -> ModelInfo:
    fb = read_flatbuffer(data)
    model, codes, has_data, dtype_names = fb.model, fb.op_names, fb.has_data, fb.dtype_names

    params, dtypes, counts = 0, set(), Counter()
    declared, largest = 0, None
    uses: list[OpUse] = []
    variables = False
    inputs: tuple[TensorInfo, ...] = ()
    outputs: tuple[TensorInfo, ...] = ()
    for g in range(model.SubgraphsLength()):
        sub = model.Subgraphs(g)
        for t in range(sub.TensorsLength()):
            tensor = sub.Tensors(t)
            dtypes.add(dtype_names.get(tensor.Type(), f"type{tensor.Type()}"))
            variables |= bool(tensor.IsVariable())
            buf = tensor.Buffer()
            if 0 < buf < len(has_data) and has_data[buf] and not tensor.IsVariable():
                params += _numel(tensor.ShapeAsNumpy() if tensor.ShapeLength() else ())
                continue
            info = _tensor_info(tensor, dtype_names)
            size = tensor_bytes(info.shape, info.dtype)
            declared += size
            if largest is None or size > largest[3]:
                largest = (info.name, info.shape, info.dtype, size)
        tensors = sub.TensorsLength()
        for j in range(sub.OperatorsLength()):
            op = sub.Operators(j)
            if not 0 <= op.OpcodeIndex() < len(codes):
                raise ValueError(f"operator {j} of subgraph {g} has operator code "
                                 f"{op.OpcodeIndex()} of {len(codes)}")
            for kind, length, get in (("input", op.InputsLength(), op.Inputs),
                                      ("output", op.OutputsLength(), op.Outputs)):
                for k in range(length):  # -1: an optional input left out
                    if not -1 <= get(k) < tensors:
                        raise ValueError(f"operator {j} ({codes[op.OpcodeIndex()]}) of subgraph "
                                         f"{g}: {kind} {k} refers to tensor {get(k)} of "
                                         f"{tensors}")
            counts[codes[op.OpcodeIndex()]] += 1
            use = OpUse(codes[op.OpcodeIndex()], tuple(
                _operand(sub.Tensors(int(i)), has_data, dtype_names) if i >= 0 else None
                for i in (op.InputsAsNumpy() if op.InputsLength() else ())))
            if use not in uses:
                uses.append(use)
        if g == 0:
            inputs = tuple(_tensor_info(sub.Tensors(int(i)), dtype_names)
                           for i in sub.InputsAsNumpy()) if sub.InputsLength() else ()
            outputs = tuple(_tensor_info(sub.Tensors(int(i)), dtype_names)
                            for i in sub.OutputsAsNumpy()) if sub.OutputsLength() else ()
    return ModelInfo(size=len(data), params=params, dtypes=tuple(sorted(dtypes)),
                     ops=tuple(sorted(counts)), op_counts=dict(sorted(counts.items())),
                     inputs=inputs, outputs=outputs, has_float16="float16" in dtypes,
                     has_variables=variables, subgraphs=model.SubgraphsLength(),
                     declared_bytes=declared, largest_tensor=largest,
                     op_uses=tuple(uses))


def inspect(data: bytes, source: str = "data") -> ModelInfo:
    """Parse a .tflite flatbuffer; :class:`ValueError` when ``data`` is not one.

    ``params`` counts the elements of every constant tensor (a tensor whose buffer holds data:
    weights, biases, and small constants such as a RESHAPE's shape), over all subgraphs.
    """
    return parse_guarded(_parse, data, source)


def parse_guarded(parse: Callable[[bytes], T], data: bytes, source: str) -> T:
    """``parse(data)`` after the file-identifier check; any failure of a corrupt or truncated
    flatbuffer becomes one clear :class:`ValueError` naming ``source``."""
    check_identifier(data, source)
    try:
        return parse(bytes(data))
    except ValueError as exc:
        raise ValueError(f"{source} is not a valid .tflite flatbuffer: {exc}") from exc
    except Exception as exc:  # truncated or corrupt tables surface as struct/index errors
        raise ValueError(f"{source} is not a valid .tflite flatbuffer: "
                         f"{type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class OpShapes:
    """One operator of the main graph, in execution order: its name and the shapes of its
    activation (non-constant) inputs and of its outputs."""

    op: str
    inputs: tuple[tuple[int, ...], ...]
    outputs: tuple[tuple[int, ...], ...]
    output_tensors: tuple[int, ...] = ()  # the outputs' tensor indices in the main graph


def _main_graph(data: bytes) -> tuple[OpShapes, ...]:
    fb = read_flatbuffer(data)
    sub = fb.model.Subgraphs(0)

    def shape(t: int) -> tuple[int, ...]:
        tensor = sub.Tensors(t)
        return tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()

    def constant(t: int) -> bool:
        tensor = sub.Tensors(t)
        buf = tensor.Buffer()
        return 0 < buf < len(fb.has_data) and fb.has_data[buf] and not tensor.IsVariable()

    out = []
    for j in range(sub.OperatorsLength()):
        op = sub.Operators(j)
        ins = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []
        out.append(OpShapes(fb.op_names[op.OpcodeIndex()],
                            tuple(shape(t) for t in ins if t >= 0 and not constant(t)),
                            tuple(shape(t) for t in outs if t >= 0),
                            tuple(t for t in outs if t >= 0)))
    return tuple(out)


def main_graph_ops(data: bytes, source: str = "data") -> tuple[OpShapes, ...]:
    """The main graph's operators with their activation shapes; :class:`ValueError` when
    ``data`` is not a .tflite flatbuffer."""
    return parse_guarded(_main_graph, data, source)
