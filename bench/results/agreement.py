"""Per-layer agreement in a record (``details["agreement"]``): where a runtime's outputs start
to differ from LiteRT's. A runner that compares stores ``{"verdict", "first_layer", "op",
"max_diff", "unit", "origin", "builtin_first_layer", "output_diff", "reference", "builtin",
"method", "how", "input", "compared", "layers_total", "layers": [{"index", "op", "tensor",
"unit", "max_diff", "differs", "builtin_max_diff", "builtin_differs"}, …]}``, or
``{"method", "reason"}`` when it could not. This module renders it.
"""

from __future__ import annotations

from typing import Any

from bench import textable


def _diff(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if unit == "steps" else f"{value:.3g}"


def render(cell_id: str, details: dict[str, Any]) -> str:
    """What ``edgebench show --layers CELL`` prints after the profile: each layer's largest
    difference from LiteRT (and from LiteRT's built-in kernels) and the verdict; or why the
    cell has none."""
    found = details.get("agreement")
    if not found:
        return (f"{cell_id}: no per-layer agreement: its runner compares no layers (or the "
                f"record is from before they were compared)")
    if "reason" in found:
        return f"{cell_id}: no per-layer agreement: {found['reason']}"
    layers = found.get("layers") or []
    rows = [[la["index"], la["op"], la["tensor"],
             _diff(la["max_diff"], la["unit"]) + (" *" if la["differs"] else ""),
             _diff(la["builtin_max_diff"], la["unit"]) + (" *" if la["builtin_differs"]
                                                          else "")]
            for la in layers]
    unit = "steps" if found.get("unit") == "steps" else "float units"
    sample = found.get("input") or {}
    lines = [f"{cell_id}: agreement with LiteRT per layer ({found['method']}; largest "
             f"difference in {unit}, * beyond the tolerance), on input {sample.get('sample')} "
             f"of {sample.get('of')} (its outputs differ by "
             f"{_diff(found.get('output_diff'), found.get('output_unit', ''))})",
             textable.render(["#", "op", "tensor", "vs LiteRT", "vs built-in kernels"], rows,
                             numeric={0, 2, 3, 4}),
             f"verdict: {found['verdict']}"]
    builtin = found.get("builtin_first_layer")
    lines.append("against LiteRT's built-in kernels (no XNNPACK): " + (
        "no layer differs beyond the tolerance" if builtin is None else
        f"layer {builtin} is the first to differ beyond the tolerance"))
    return "\n".join(lines)
