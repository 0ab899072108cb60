"""Per-layer profiles in a record: where an inference's time (or instructions) goes.

A runner that can profile stores ``details["layers"]``: one entry per operator of the main
graph, in execution order, ``{"index", "op", "inputs", "outputs", "macs", <unit>, "share",
"method"}`` (``inputs``/``outputs`` the activation shapes; ``macs`` None when not modelled;
``<unit>`` one of :data:`UNITS`; ``share`` of the whole inference), and ``details["layers_check"]``:
whether the layers sum to the inference's total within :data:`TOLERANCE`. A runner that cannot
profile says why in ``details["layers_reason"]`` instead. This module checks and renders them.
"""

from __future__ import annotations

from typing import Any

from bench import textable
from bench.results.formatting import duration

#: How far the layers' sum may be from the inference's total (a fraction of the total).
TOLERANCE = 0.01
#: What a layer's figure counts: instructions (emulated) or nanoseconds (timed).
UNITS = ("instructions", "time_ns")


def check(layers: list[dict[str, Any]], unit: str, total: float, source: str) -> dict[str, Any]:
    """``layers_check``: the layers' sum against the inference's ``total`` (from ``source``)."""
    summed = float(sum(layer[unit] for layer in layers))
    difference = (summed - total) / total if total > 0 else float("inf")
    return {"unit": unit, "layers_sum": summed, "total": float(total), "total_source": source,
            "difference": difference, "tolerance": TOLERANCE,
            "passed": abs(difference) <= TOLERANCE}


def unit_of(layers: list[dict[str, Any]]) -> str:
    """The unit the layers count in (the first of :data:`UNITS` they carry)."""
    return next((u for u in UNITS if layers and u in layers[0]), UNITS[0])


def shape_text(shapes: list[list[int]] | None) -> str:
    """``1x49x10x1`` (several shapes joined by ``, ``; a scalar as ``()``)."""
    return ", ".join("x".join(map(str, s)) if s else "()" for s in shapes or [])


def _figure(value: float, unit: str) -> str:
    return f"{value:,.0f}" if unit == "instructions" else duration(value, "ns")


def render(cell_id: str, details: dict[str, Any], status: str = "ok") -> str:
    """The table ``edgebench show --layers CELL`` prints, with the sum check; or why the cell
    has no layers."""
    layers = details.get("layers")
    if not layers:
        reason = details.get("layers_reason") or (
            f"the cell {status} before it was measured" if status != "ok" else
            "its runner records none (or the record is from before profiles were kept)")
        return f"{cell_id}: no per-layer profile: {reason}"
    unit = unit_of(layers)
    header = ["#", "op", "input shape", "output shape", "MACs",
              "instructions" if unit == "instructions" else "time", "share"]
    rows = [[layer["index"], layer["op"], shape_text(layer.get("inputs")),
             shape_text(layer.get("outputs")),
             "-" if layer.get("macs") is None else f"{layer['macs']:,}",
             _figure(layer[unit], unit), f"{100 * layer['share']:.1f} %"] for layer in layers]
    methods = sorted({str(layer.get("method")) for layer in layers})
    lines = [f"{cell_id}: {len(layers)} layers ({', '.join(methods)})",
             textable.render(header, rows, numeric={0, 4, 5, 6})]
    verdict = details.get("layers_check")
    if verdict:
        state = "passed" if verdict["passed"] else "FAILED"
        lines.append(f"sum of layers {_figure(verdict['layers_sum'], unit)} = "
                     f"{100 * (1 + verdict['difference']):.2f} % of the inference's "
                     f"{_figure(verdict['total'], unit)} ({verdict['total_source']}): check "
                     f"{state} (tolerance {100 * verdict['tolerance']:g} %)")
    return "\n".join(lines)
