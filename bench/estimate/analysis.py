"""Per-operator analysis of a .tflite model: class, dtype, MACs, parameters, activation bytes.

Read from the flatbuffer with the schema LiteRT ships (via :mod:`bench.artifacts.tflite_info`); no
interpreter is built. MACs follow the usual conventions (batch 1 where the graph says so):

* conv: ``out_h·out_w·out_c·k_h·k_w·in_c/groups``; transpose conv: ``in_h·in_w·in_c·k_h·k_w·out_c``
* depthwise conv: ``out_h·out_w·out_c·k_h·k_w``
* fully connected / batch matmul: ``rows·out_features·in_features``
* LSTM (also ``UNIDIRECTIONAL_SEQUENCE_LSTM``): ``4·(in + units)·units`` per step × steps
* elementwise: output elements; pooling: output elements × window; other ops: output elements
  (reshape-like ops that move no data: 0)
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bench import textable
from bench.artifacts.tflite_info import parse_guarded, read_flatbuffer

OP_CLASSES = ("conv", "depthwise", "fc", "elementwise", "other")

_CONV = {"CONV_2D", "CONV_3D", "TRANSPOSE_CONV", "CONV_3D_TRANSPOSE"}
_FC = {"FULLY_CONNECTED", "BATCH_MATMUL", "LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM",
       "BIDIRECTIONAL_SEQUENCE_LSTM", "UNIDIRECTIONAL_SEQUENCE_RNN", "RNN", "SVDF"}
_ELEMENTWISE = {
    "ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "POW", "ADD_N",
    "RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "LEAKY_RELU", "PRELU", "HARD_SWISH", "ELU",
    "LOGISTIC", "TANH", "GELU", "EXP", "LOG", "SQRT", "RSQRT", "SQUARE", "ABS", "NEG", "SIN",
    "COS", "FLOOR", "CEIL", "ROUND", "QUANTIZE", "DEQUANTIZE", "CAST", "FLOOR_DIV", "FLOOR_MOD",
    "LESS", "GREATER", "EQUAL", "NOT_EQUAL", "LESS_EQUAL", "GREATER_EQUAL", "SELECT",
    "SELECT_V2", "LOGICAL_AND", "LOGICAL_OR", "LOGICAL_NOT",
}
_POOL = {"AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"}
_NO_DATA_MOVED = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "SHAPE"}

DTYPE_BYTES = {"int8": 1, "uint8": 1, "bool": 1, "int16": 2, "float16": 2, "bfloat16": 2,
               "int32": 4, "uint32": 4, "float32": 4, "int64": 8, "float64": 8, "int4": 1}


def op_class(op: str) -> str:
    """The cost class of an operator name: conv, depthwise, fc, elementwise or other."""
    if op in _CONV:
        return "conv"
    if op == "DEPTHWISE_CONV_2D":
        return "depthwise"
    if op in _FC:
        return "fc"
    if op in _ELEMENTWISE:
        return "elementwise"
    return "other"


@dataclass(frozen=True)
class OpInfo:
    """One operator of the model."""

    index: int
    subgraph: int
    op: str
    op_class: str
    dtype: str  # dtype of its first activation input (the arithmetic it runs)
    macs: int
    params: int  # elements of its constant inputs (weights, biases, small constants)
    input_bytes: int  # non-constant inputs
    output_bytes: int
    output_elements: int
    kernel: tuple[int, ...] = ()  # (k_h, k_w) of conv and depthwise conv ops
    channels: int = 0  # output channels (last dimension of its output)

    @property
    def cost_class(self) -> str:
        """The op class the estimator prices: ``pointwise`` for a 1×1 conv, else
        :attr:`op_class`."""
        if self.op_class == "conv" and self.kernel == (1, 1):
            return "pointwise"
        return self.op_class


@dataclass(frozen=True)
class Analysis:
    """Per-operator table and totals of one model."""

    size: int
    params: int  # elements of all constant tensors (as :func:`bench.artifacts.tflite_info.inspect`)
    ops: tuple[OpInfo, ...]
    peak_activation_bytes: int  # largest live set of activations over the execution order
    variable_bytes: int  # persistent variable tensors (e.g. LSTM state)
    input_bytes: int
    output_bytes: int
    tensors: int = 0  # tensors in all subgraphs
    conv_channels: int = 0  # output channels of conv and depthwise ops (per-channel quant data)
    warnings: tuple[str, ...] = field(default_factory=tuple)
    sha256: str = ""  # of the model file

    @property
    def macs(self) -> int:
        return sum(o.macs for o in self.ops)

    def macs_by_class(self) -> dict[str, int]:
        return {c: sum(o.macs for o in self.ops if o.op_class == c) for c in OP_CLASSES}

    def ops_by_class(self) -> dict[str, int]:
        return {c: sum(1 for o in self.ops if o.op_class == c) for c in OP_CLASSES}

    @property
    def dtype(self) -> str:
        """The dtype of the operators that carry most MACs."""
        weight: dict[str, int] = {}
        for o in self.ops:
            weight[o.dtype] = weight.get(o.dtype, 0) + o.macs + 1
        return max(weight, key=lambda d: weight[d]) if weight else "int8"

    def totals(self) -> dict[str, Any]:
        return {"size": self.size, "params": self.params, "macs": self.macs,
                "macs_by_class": self.macs_by_class(), "ops": len(self.ops),
                "ops_by_class": self.ops_by_class(), "dtype": self.dtype,
                "peak_activation_bytes": self.peak_activation_bytes,
                "variable_bytes": self.variable_bytes, "input_bytes": self.input_bytes,
                "output_bytes": self.output_bytes, "tensors": self.tensors,
                "conv_channels": self.conv_channels}

    def to_json(self) -> dict[str, Any]:
        return {**self.totals(), "warnings": list(self.warnings),
                "layers": [asdict(o) for o in self.ops]}


def _shape(tensor: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()


def _numel(shape: tuple[int, ...]) -> int:
    return int(math.prod(max(d, 1) for d in shape)) if shape else 1


class _Graph:
    """Tensors of one subgraph with their shapes, dtypes and constness."""

    def __init__(self, sub: Any, has_data: list[bool], dtype_names: dict[int, str]) -> None:
        self.shapes: list[tuple[int, ...]] = []
        self.dtypes: list[str] = []
        self.const: list[bool] = []
        self.variable: list[bool] = []
        for t in range(sub.TensorsLength()):
            tensor = sub.Tensors(t)
            buf = tensor.Buffer()
            self.shapes.append(_shape(tensor))
            self.dtypes.append(dtype_names.get(tensor.Type(), f"type{tensor.Type()}"))
            self.variable.append(bool(tensor.IsVariable()))
            self.const.append(0 < buf < len(has_data) and has_data[buf]
                              and not tensor.IsVariable())

    def nbytes(self, i: int) -> int:
        return _numel(self.shapes[i]) * DTYPE_BYTES.get(self.dtypes[i], 4)


def _pool_window(op: Any, s: Any) -> int:
    table = op.BuiltinOptions()
    if table is None:
        return 1
    opts = s.Pool2DOptions()
    opts.Init(table.Bytes, table.Pos)
    return max(1, opts.FilterHeight()) * max(1, opts.FilterWidth())


def _macs(name: str, op: Any, ins: list[int], outs: list[int], g: _Graph, s: Any) -> int:
    def shape(pos: int, tensors: list[int] = ins) -> tuple[int, ...]:
        return g.shapes[tensors[pos]] if pos < len(tensors) and tensors[pos] >= 0 else ()

    out = shape(0, outs)
    out_n = _numel(out) if outs else 0
    if name in ("CONV_2D", "CONV_3D") and len(shape(1)) >= 4:
        w = shape(1)  # [out_c, k_h, k_w, in_c/groups] (3D: [k_d, k_h, k_w, in_c, out_c])
        return out_n * _numel(w) // max(1, w[-1] if name == "CONV_3D" else w[0])
    if name == "TRANSPOSE_CONV" and len(shape(1)) == 4:
        w, x = shape(1), shape(2)  # weights [out_c, k_h, k_w, in_c], input [1, h, w, in_c]
        return _numel(x) * _numel(w) // max(1, w[3])
    if name == "DEPTHWISE_CONV_2D" and len(shape(1)) == 4:
        w = shape(1)  # [1, k_h, k_w, out_c]
        return out_n * w[1] * w[2]
    if name == "FULLY_CONNECTED" and len(shape(1)) == 2:
        out_features, in_features = shape(1)
        return out_n * in_features if out_features else 0
    if name == "BATCH_MATMUL" and len(shape(0)) >= 2:
        return out_n * shape(0)[-1]
    if name in ("LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM"):
        x, w_in, w_rec = shape(0), shape(2), shape(6)  # input, input→forget, recurrent→forget
        if len(x) < 2 or len(w_in) != 2:
            return 0
        units, n_in = w_in
        rec = w_rec[1] if len(w_rec) == 2 else units
        steps = _numel(x) // max(1, x[-1])
        proj = _numel(shape(16)) if len(ins) > 16 and ins[16] >= 0 else 0
        per_step = 4 * units * (n_in + rec) + proj
        return steps * per_step * (2 if name.startswith("BIDIRECTIONAL") else 1)
    if name in _POOL:
        return out_n * _pool_window(op, s)
    if name in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD"):
        return _numel(shape(0))
    if name in _NO_DATA_MOVED:
        return 0
    return out_n


def _peak_live(ops: list[tuple[list[int], list[int]]], g: _Graph, inputs: list[int],
               outputs: list[int]) -> int:
    """Largest sum of live activation bytes at any operator (inputs live from the start,
    outputs to the end); what an ideal offline planner needs, without fragmentation."""
    first: dict[int, int] = {t: -1 for t in inputs}
    last: dict[int, int] = {t: len(ops) for t in outputs}
    for k, (ins, outs) in enumerate(ops):
        for t in outs:
            first.setdefault(t, k)
        for t in ins + outs:
            last[t] = max(last.get(t, k), k)
    peak = 0
    for k in range(len(ops)):
        live = sum(g.nbytes(t) for t, start in first.items()
                   if t >= 0 and not g.const[t] and not g.variable[t]
                   and start <= k <= last.get(t, start))
        peak = max(peak, live)
    return peak


def analyse(data: bytes, source: str = "data") -> Analysis:
    """The per-operator table of a .tflite flatbuffer; :class:`ValueError` when it is not one."""
    return replace(parse_guarded(_analyse, data, source), sha256=hashlib.sha256(data).hexdigest())


def _analyse(data: bytes) -> Analysis:
    fb = read_flatbuffer(data)
    s, model, codes, dtype_names = fb.schema, fb.model, fb.op_names, fb.dtype_names
    has_data = list(fb.has_data)

    ops: list[OpInfo] = []
    params, peak, variables, in_bytes, out_bytes, tensors, channels = 0, 0, 0, 0, 0, 0, 0
    warnings: list[str] = []
    for gi in range(model.SubgraphsLength()):
        sub = model.Subgraphs(gi)
        g = _Graph(sub, has_data, dtype_names)
        tensors += len(g.shapes)
        params += sum(_numel(g.shapes[t]) for t in range(len(g.shapes)) if g.const[t])
        variables += sum(g.nbytes(t) for t in range(len(g.shapes)) if g.variable[t])
        order: list[tuple[list[int], list[int]]] = []
        for j in range(sub.OperatorsLength()):
            op = sub.Operators(j)
            name = codes[op.OpcodeIndex()]
            ins = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
            outs = [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []
            order.append((ins, outs))
            acts = [t for t in ins if t >= 0 and not g.const[t]]
            dtype = g.dtypes[acts[0]] if acts else (g.dtypes[outs[0]] if outs else "")
            w = g.shapes[ins[1]] if len(ins) > 1 and ins[1] >= 0 else ()
            kernel = (w[1], w[2]) if name in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(w) == 4 \
                else ()
            ops.append(OpInfo(
                index=len(ops), subgraph=gi, op=name, op_class=op_class(name), dtype=dtype,
                kernel=kernel,
                macs=int(_macs(name, op, ins, outs, g, s)),
                params=sum(_numel(g.shapes[t]) for t in ins if t >= 0 and g.const[t]),
                input_bytes=sum(g.nbytes(t) for t in acts if not g.variable[t]),
                output_bytes=sum(g.nbytes(t) for t in outs if t >= 0),
                output_elements=sum(_numel(g.shapes[t]) for t in outs if t >= 0),
                channels=g.shapes[outs[0]][-1] if outs and outs[0] >= 0 and g.shapes[outs[0]]
                else 0))
            if ops[-1].op_class in ("conv", "depthwise"):
                channels += ops[-1].channels
            if name.startswith("CUSTOM:") or name in ("WHILE", "IF", "CALL_ONCE"):
                warnings.append(f"{name}: cost of this operator is not modelled (counted once, "
                                f"as its outputs)")
        inputs = [int(i) for i in sub.InputsAsNumpy()] if sub.InputsLength() else []
        outputs = [int(i) for i in sub.OutputsAsNumpy()] if sub.OutputsLength() else []
        peak = max(peak, _peak_live(order, g, inputs, outputs))
        if gi == 0:
            in_bytes = sum(g.nbytes(t) for t in inputs)
            out_bytes = sum(g.nbytes(t) for t in outputs)
    if model.SubgraphsLength() > 1:
        warnings.append(f"{model.SubgraphsLength()} subgraphs: operators of control-flow bodies "
                        f"are counted once per inference")
    return Analysis(size=len(data), params=params, ops=tuple(ops), peak_activation_bytes=peak,
                    variable_bytes=variables, input_bytes=in_bytes, output_bytes=out_bytes,
                    tensors=tensors, conv_channels=channels,
                    warnings=tuple(dict.fromkeys(warnings)))


def render_table(analysis: Analysis) -> str:
    """The per-layer table ``edgebench inspect`` prints, with totals."""
    header = ["#", "op", "class", "dtype", "MACs", "params", "in B", "out B"]
    multi = analysis.ops[-1].subgraph if analysis.ops else 0
    rows = [[f"{o.subgraph}:{o.index}" if multi else o.index, o.op[:24], o.op_class, o.dtype,
             f"{o.macs:,}", f"{o.params:,}", f"{o.input_bytes:,}", f"{o.output_bytes:,}"]
            for o in analysis.ops]
    table = textable.render(header, rows, numeric={0, 4, 5, 6, 7})
    lines = [table, "-" * max(map(len, table.splitlines()))]
    by_class = ", ".join(f"{c} {m:,}" for c, m in analysis.macs_by_class().items() if m)
    lines += [f"total: {len(analysis.ops)} ops, {analysis.macs:,} MACs ({by_class}), "
              f"{analysis.params:,} params, {analysis.size:,} B",
              f"peak activations {analysis.peak_activation_bytes:,} B"
              + (f", variables {analysis.variable_bytes:,} B" if analysis.variable_bytes else "")]
    lines += [f"note: {w}" for w in analysis.warnings]
    return "\n".join(lines)
