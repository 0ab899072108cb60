"""Per-layer agreement (``details["agreement"]``): where a runtime's outputs start to differ
from LiteRT's, found by comparing each operator's output tensor on one input.

LiteRT exposes its intermediate tensors with ``experimental_preserve_all_tensors``: its default
XNNPACK delegate then runs operator by operator (each output written), with the outputs it gives
without preservation (checked on the compared input, ``reference_check``). A runtime under test
gives operator ``i``'s first output through ``target(i)``: the emulated firmware prints it over the
protocol (``tensor N%``), TFLite Micro's Python interpreter keeps every tensor
(``kPreserveAllTensors``). Each layer's difference is in quantized steps of the tensor's own
scale (integer tensors) or in float units; the first layer beyond one step
(:data:`STEP_TOLERANCE`; a float tensor: beyond :data:`FLOAT_TOLERANCE` of its largest reference
magnitude) is ``first_layer``, and ``origin`` the first layer with any difference. Each layer
is also compared with LiteRT's built-in kernels (no delegate, ``builtin_max_diff``): a runtime
equal to them differs only where XNNPACK rounds differently.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bench.artifacts.tflite_info import main_graph_ops

#: An integer tensor differs when some value is more than this many quantized steps apart.
STEP_TOLERANCE = 1
#: A float tensor differs when some value is further apart than this share of the largest
#: magnitude of LiteRT's tensor.
FLOAT_TOLERANCE = 1e-4
#: Bytes of operator outputs a comparison reads (a firmware prints them in hex: ~10 s of an
#: emulated UART); layers beyond are left out and ``compared`` says how many were.
AGREEMENT_BYTES = 1 << 20

REFERENCE = ("LiteRT (ai-edge-litert) with experimental_preserve_all_tensors: its XNNPACK "
             "delegate per operator")
BUILTIN = "LiteRT's built-in kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES)"

#: Target = operator index → its first output's values (flat; raw bytes are read in LiteRT's
#: type for the tensor), or None when it gives no more.
Target = Callable[[int], "np.ndarray | bytes | None"]


def litert_tensors(tflite: bytes, xs: Sequence[np.ndarray], delegate: bool
                   ) -> tuple[Any, np.ndarray]:
    """A LiteRT interpreter that kept every tensor of one invoke on inputs ``xs`` (with
    XNNPACK, as by default, or the built-in kernels), and its first output."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = OpResolverType.AUTO if delegate else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with warnings.catch_warnings():  # "intended for debugging purposes only": it is one
        warnings.simplefilter("ignore", UserWarning)
        interpreter = Interpreter(model_content=tflite, num_threads=1,
                                  experimental_preserve_all_tensors=True,
                                  experimental_op_resolver_type=kind)
    interpreter.allocate_tensors()
    for detail, x in zip(interpreter.get_input_details(), xs, strict=True):
        interpreter.set_tensor(detail["index"], np.asarray(x, detail["dtype"]).reshape(
            detail["shape"]))
    interpreter.invoke()
    return interpreter, interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def _difference(target: np.ndarray, reference: np.ndarray) -> tuple[float, str, bool]:
    """Max absolute difference, its unit, and whether it is beyond the tolerance."""
    a, b = np.asarray(target, np.float64).ravel(), np.asarray(reference, np.float64).ravel()
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    if np.issubdtype(reference.dtype, np.integer) or reference.dtype == np.bool_:
        return diff, "steps", diff > STEP_TOLERANCE
    scale = max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-30)
    return diff, "", not diff <= FLOAT_TOLERANCE * scale  # NaN differs


def compare_layers(tflite: bytes, xs: Sequence[np.ndarray], target: Target,
                   target_output: np.ndarray, method: str, source: str = "model",
                   budget: int = AGREEMENT_BYTES) -> dict[str, Any]:
    """``details["agreement"]`` for inputs ``xs`` (one array per model input): each operator's
    first output from ``target`` against LiteRT's, in execution order, up to ``budget`` bytes
    of outputs. ``target_output`` is the runtime's first model output on ``xs``."""
    ops = main_graph_ops(tflite, source)
    lite, lite_out = litert_tensors(tflite, xs, delegate=True)
    builtin, _ = litert_tensors(tflite, xs, delegate=False)
    layers: list[dict[str, Any]] = []
    read = 0
    for index, op in enumerate(ops):
        if not op.output_tensors:
            continue
        tensor = op.output_tensors[0]
        reference = np.asarray(lite.get_tensor(tensor))
        if read + reference.nbytes > budget and layers:
            break
        got = target(index)
        if got is None:
            break
        if isinstance(got, bytes):
            if len(got) != reference.nbytes:
                raise RuntimeError(f"operator {index} ({op.op}): the runtime gave {len(got)} "
                                   f"bytes for tensor {tensor}, LiteRT has {reference.nbytes}")
            got = np.frombuffer(got, reference.dtype)
        got = np.asarray(got)
        if got.size != reference.size:
            raise RuntimeError(f"operator {index} ({op.op}): the runtime gave {got.size} values "
                               f"for tensor {tensor}, LiteRT has {reference.size}")
        read += reference.nbytes
        diff, unit, differs = _difference(got, reference)
        builtin_diff, _, builtin_differs = _difference(got, np.asarray(
            builtin.get_tensor(tensor)))
        layers.append({"index": index, "op": op.op, "tensor": tensor, "unit": unit,
                       "max_diff": diff, "differs": differs, "builtin_max_diff": builtin_diff,
                       "builtin_differs": builtin_differs})
    first = next((layer for layer in layers if layer["differs"]), None)
    origin = next((layer for layer in layers if layer["max_diff"] > 0), None)
    check, _, _ = _difference(np.asarray(lite_out), np.asarray(
        _plain_litert_output(tflite, xs)))
    out_diff, out_unit, _ = _difference(np.asarray(target_output), np.asarray(lite_out))
    return {
        "method": method, "reference": REFERENCE, "builtin": BUILTIN,
        "tolerance": {"steps": STEP_TOLERANCE, "float_share": FLOAT_TOLERANCE},
        "output_diff": out_diff, "output_unit": out_unit,
        "reference_check": check,
        "compared": len(layers), "layers_total": len(ops),
        "first_layer": None if first is None else first["index"],
        "op": None if first is None else first["op"],
        "max_diff": None if first is None else first["max_diff"],
        "unit": (first or origin or {"unit": out_unit})["unit"],
        "origin": None if origin is None else origin["index"],
        "builtin_first_layer": next((la["index"] for la in layers if la["builtin_differs"]),
                                    None),
        "verdict": verdict(first, origin, len(layers), len(ops)),
        "layers": layers}


def _plain_litert_output(tflite: bytes, xs: Sequence[np.ndarray]) -> np.ndarray:
    """LiteRT's first output on ``xs`` as it runs without preserved tensors (the reference of
    ``output_max_diff``)."""
    from bench.runners.litert import LiteRTModel

    return np.asarray(LiteRTModel(tflite, {}).run(list(xs))[0])


def worst_input(target: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> int:
    """The index of the input whose outputs differ most (the first of them)."""
    diffs = [float(np.max(np.abs(np.asarray(t, np.float64).ravel()
                                 - np.asarray(r, np.float64).ravel()), initial=0.0))
             for t, r in zip(target, reference, strict=True)]
    return int(np.argmax(diffs)) if diffs else 0


def verdict(first: dict[str, Any] | None, origin: dict[str, Any] | None, compared: int,
            total: int) -> str:
    """One sentence: the first layer beyond one step, or that none is."""
    scope = "" if compared == total else f" (of the first {compared} of {total} layers)"
    if first is not None:
        if first["unit"] == "steps":
            return (f"layer {first['index']} ({first['op']}) is the first to differ by more "
                    f"than one step: {first['max_diff']:g} steps{scope}")
        return (f"layer {first['index']} ({first['op']}) is the first to differ beyond float "
                f"rounding: {first['max_diff']:.3g}{scope}")
    if origin is not None:
        beyond = "one step" if origin["unit"] == "steps" else "float rounding"
        return (f"no layer differs beyond {beyond}{scope}; layer {origin['index']} "
                f"({origin['op']}) is the first off by {origin['max_diff']:.3g}")
    return f"no layer differs{scope}"
