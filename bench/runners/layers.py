"""A cell's per-layer profile (``details["layers"]``, :mod:`bench.results.layers`) from a
runtime's per-operator counts, with each operator's shapes and MACs read from the model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bench.artifacts.tflite_info import main_graph_ops
from bench.board.link import BoardError, BoardLink
from bench.estimate.analysis import analyse
from bench.results.layers import check

#: Why the host runtimes give no layers: what their Python packages expose.
NO_PROFILER = {
    "litert": "LiteRT's Python interpreter (ai_edge_litert.interpreter.Interpreter) exposes no "
              "per-operator profiler: invoke() times the whole graph only",
    "tflm": "the tflite_micro Python interpreter exposes no profiler hook (its constructor "
            "takes no MicroProfilerInterface): invoke() times the whole graph only",
}


def _same_op(model_op: str, runtime_op: str) -> bool:
    """TFLite Micro names a custom operator by its custom code alone."""
    return runtime_op in (model_op, model_op.removeprefix("CUSTOM:"))


def layer_details(tflite: bytes, counts: Sequence[tuple[str, float]], unit: str, method: str,
                  total: float, total_source: str, source: str = "model") -> dict[str, Any]:
    """``{"layers": […], "layers_check": {…}}`` for the main graph's operators and a runtime's
    ``(op name, figure)`` per operator in execution order; ``{"layers_reason": …}`` when they
    are not the model's operators."""
    ops = main_graph_ops(tflite, source)
    names = [op for op, _ in counts]
    if len(counts) != len(ops) or not all(_same_op(o.op, n) for o, n in zip(ops, names,
                                                                             strict=True)):
        return {"layers_reason": f"the runtime profiled {len(counts)} operators "
                                 f"({', '.join(names[:6])}{', …' if len(names) > 6 else ''}); "
                                 f"the model's main graph has {len(ops)}"}
    macs = {o.index: o.macs for o in analyse(tflite, source).ops if o.subgraph == 0}
    layers = [{"index": i, "op": o.op, "inputs": [list(s) for s in o.inputs],
               "outputs": [list(s) for s in o.outputs], "macs": macs.get(i),
               unit: value, "share": value / total if total > 0 else 0.0, "method": method}
              for i, (o, (_, value)) in enumerate(zip(ops, counts, strict=True))]
    return {"layers": layers, "layers_check": check(layers, unit, total, total_source)}


def firmware_layers(link: BoardLink, tflite: bytes, total: float, unit: str, method: str,
                    per_tick: Callable[[int], float], total_source: str, source: str,
                    timeout: float) -> dict[str, Any]:
    """``layers%`` on a firmware built with profiling (the last input loaded): each operator's
    ticks × ``per_tick(hz)`` in ``unit``, checked against ``total`` (the inference's, from
    ``total_source``); or why there are none (without the port or transcript, so a record reads
    the same from every machine). Never fails the cell."""
    try:
        ticks = link.layers(timeout)
    except BoardError as exc:
        return {"layers_reason": f"the firmware gave no per-layer profile (built without "
                                 f"profiling?): {exc.what}"}
    scale = per_tick(ticks.hz)
    details = layer_details(tflite, [(op, n * scale) for op, n in ticks.ops], unit, method,
                            total, total_source, source)
    if "layers_check" in details:
        details["layers_check"]["profiled_invoke"] = ticks.total * scale
        details["layers_check"]["resolution"] = scale  # a tick, in the unit
        if ticks.dropped:
            details["layers_check"]["passed"] = False
            details["layers_check"]["dropped"] = ticks.dropped
    return details
