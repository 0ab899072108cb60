"""The leaderboard's Altair charts.

Vega-Lite reads ``.``, ``[`` and ``]`` in a field name as nested access, so a column named
``latency_p50 [ms]`` plots nothing. Every chart here is built from a frame whose encoded
columns are plain identifiers holding finite numbers; names and units go in the titles.
Charts render as SVG, so each mark is an element a browser test can count.
"""

from __future__ import annotations

import math
from typing import Any

import altair as alt
import pandas as pd

FITS_COLOURS = alt.Scale(domain=[True, False], range=["#2a9d8f", "#e76f51"])
#: Rendered as SVG (Streamlit's own default below 2,000 points per dataset, fixed here).
USERMETA = {"embedOptions": {"renderer": "svg"}}
#: A bar chart's height: a row per bar plus its axis and title. Streamlit fits charts to a
#: given height, axes included; a discrete (per-bar step) height makes Vega warn and drop it.
BAR_ROW_PX, AXES_PX = 32, 70
#: A trade-off chart's plot height: room for a close front and a legend of 20 variants.
TRADEOFF_HEIGHT_PX = 420


def plain(df: pd.DataFrame, numeric: list[str]) -> pd.DataFrame:
    """``df`` with only rows whose ``numeric`` columns are finite; raises ValueError when a
    column name is not a plain identifier (Vega-Lite would read it as a nested path)."""
    bad = [c for c in df.columns if not str(c).isidentifier()]
    if bad:
        raise ValueError(f"chart field names must be plain identifiers, got {bad}")
    finite = df[numeric].apply(pd.to_numeric, errors="coerce").map(
        lambda v: not pd.isna(v) and math.isfinite(v)).all(axis=1)
    return df[finite].reset_index(drop=True)


Bounds = tuple[pd.Series, pd.Series]


def tradeoff_points(df: pd.DataFrame, x: pd.Series, y: pd.Series, x_interval: Bounds | None = None,
                    y_interval: Bounds | None = None) -> pd.DataFrame:
    """The chart frame of a trade-off: ``x``, ``y``, the cell's ids and its ``label`` (the
    variant, or ``model/variant`` when the cells hold several models), finite rows only; with
    an estimate's 80 % interval on either axis, ``x_low``/``x_high`` or ``y_low``/``y_high``
    (NaN where a figure has none)."""
    cells = df["cell_id"].astype(str)
    several = "model" in df and df["model"].nunique() > 1
    label = cells.str.rsplit("@", n=1).str[0] if several else df["variant"].astype(str)
    frame = pd.DataFrame({"x": x.to_numpy(), "y": y.to_numpy(),
                          "variant": df["variant"].astype(str).to_numpy(),
                          "label": label.to_numpy(), "cell_id": cells.to_numpy(),
                          "run": df["run"].astype(str).to_numpy()})
    for axis, bounds in (("x", x_interval), ("y", y_interval)):
        if bounds is not None:
            frame[f"{axis}_low"] = bounds[0].to_numpy(dtype=float)
            frame[f"{axis}_high"] = bounds[1].to_numpy(dtype=float)
    return plain(frame, ["x", "y"])


def _error_bars(points: pd.DataFrame, x: alt.X, y: alt.Y, scales: tuple[alt.Scale, alt.Scale],
                colour: alt.Color) -> list[alt.Chart]:
    """A rule per estimated point from its interval's low to high bound, on each axis that has
    one (the 80 % interval of ``edgebench estimate``)."""
    out = []
    for axis in ("x", "y"):
        if f"{axis}_low" not in points:
            continue
        bars = points.dropna(subset=[f"{axis}_low", f"{axis}_high"])
        if bars.empty:
            continue
        ends = ({"x": alt.X(f"{axis}_low", scale=scales[0]), "x2": f"{axis}_high", "y": y}
                if axis == "x" else
                {"y": alt.Y(f"{axis}_low", scale=scales[1]), "y2": f"{axis}_high", "x": x})
        out.append(alt.Chart(bars).mark_rule(opacity=0.6).encode(color=colour, **ends))
    return out


def tradeoff_chart(points: pd.DataFrame, front: pd.DataFrame, x_title: str,
                   y_title: str, title: str | None = None) -> alt.LayerChart:
    """One circle per cell (colour: variant; up to 20 distinct colours), error bars over the
    estimated ones (their 80 % interval) and the Pareto front as a dashed line through labelled
    points; the x axis is logarithmic when every x is positive; ``title`` says what the chart
    compares (the data set and its models)."""
    log = bool(len(points)) and bool((points["x"] > 0).all())
    scales = alt.Scale(type="log" if log else "linear"), alt.Scale(zero=False)
    x = alt.X("x", title=x_title, scale=scales[0])
    y = alt.Y("y", title=y_title, scale=scales[1])
    many = points["variant"].nunique() > 10 if len(points) else False
    colour = alt.Color("variant", title="variant",
                       scale=alt.Scale(scheme="category20" if many else "tableau10"))
    dots = alt.Chart(points).mark_circle(size=90).encode(
        x=x, y=y, color=colour,
        tooltip=[alt.Tooltip("cell_id", title="cell"), alt.Tooltip("run", title="run"),
                 alt.Tooltip("x", title=x_title), alt.Tooltip("y", title=y_title)])
    line = alt.Chart(front).mark_line(color="gray", strokeDash=[4, 3]).encode(x=x, y=y)
    bars = _error_bars(points, x, y, scales, colour)
    front = front.reset_index(drop=True)  # labels alternate above and below the front
    above, below = (alt.Chart(part).mark_text(align="left", dx=7, dy=dy, fontSize=11,
                                              color="#444").encode(x=x, y=y, text="label")
                    for part, dy in ((front.iloc[::2], -8), (front.iloc[1::2], 12)))
    chart = alt.layer(*bars, dots, line, above, below).properties(height=TRADEOFF_HEIGHT_PX,
                                                                   usermeta=USERMETA)
    if title:
        chart = chart.properties(title=alt.Title(title, anchor="start", fontSize=13,
                                                 fontWeight="normal"))
    return chart


def fit_points(fit: pd.DataFrame, need: str) -> pd.DataFrame:
    """The chart frame of a fit: ``cell``, ``need_kb`` (the ``need`` column) and ``fits``."""
    return plain(pd.DataFrame({"cell": fit["cell"].astype(str).to_numpy(),
                               "need_kb": fit[need].to_numpy(dtype=float),
                               "fits": fit["fits"].astype(bool).to_numpy()}), ["need_kb"])


#: Above this ratio of the largest to the smallest figure, a bar chart's axis is logarithmic:
#: on a linear one the small bars would be hairlines beside the big one.
LOG_RANGE = 100.0


def log_axis(values: pd.Series, capacity: float | None = None) -> bool:
    """Whether bars of ``values`` (and a capacity rule) need a logarithmic axis: all positive
    and spanning more than :data:`LOG_RANGE`."""
    figures = [float(v) for v in values]
    if capacity is not None and pd.notna(capacity) and math.isfinite(capacity):
        figures.append(float(capacity))
    if not figures or min(figures) <= 0:
        return False
    return max(figures) / min(figures) > LOG_RANGE


def fit_chart(bars: pd.DataFrame, capacity_kb: float | None, title: str) -> alt.Chart:
    """One bar per model × variant (green fits, red does not) and the capacity as a red rule;
    the height follows the number of bars. When the figures span more than
    :data:`LOG_RANGE`, the axis is logarithmic (its title says so) and every bar still shows."""
    log = log_axis(bars["need_kb"], capacity_kb)
    scale = alt.Scale(type="log") if log else alt.Scale()
    axis_title = f"{title} (log scale)" if log else title
    encoding: dict[str, Any] = {"x": alt.X("need_kb", title=axis_title, scale=scale)}
    if log:  # a log axis has no zero: bars start at the power of ten below the smallest figure
        capacity = [float(capacity_kb)] if capacity_kb is not None and pd.notna(capacity_kb) \
            and math.isfinite(capacity_kb) else []
        smallest = min([float(bars["need_kb"].min()), *capacity])
        bars = bars.assign(floor_kb=float(10 ** math.floor(math.log10(smallest))))
        encoding = {"x": alt.X("floor_kb", title=axis_title, scale=scale), "x2": "need_kb"}
    chart = alt.Chart(bars).mark_bar().encode(
        **encoding,
        # whole names: cut at the default 180 px, har_mlp_basic_motions/fp16, /fp32 and /int8
        # all read "har_mlp_basic_…"
        y=alt.Y("cell", title=None, sort=alt.EncodingSortField("need_kb", order="descending"),
                axis=alt.Axis(labelLimit=0)),
        color=alt.Color("fits", title="fits", scale=FITS_COLOURS))
    if capacity_kb is not None and pd.notna(capacity_kb) and math.isfinite(capacity_kb):
        rule = plain(pd.DataFrame({"capacity_kb": [float(capacity_kb)]}), ["capacity_kb"])
        chart = chart + alt.Chart(rule).mark_rule(color="red", strokeWidth=2).encode(
            x=alt.X("capacity_kb", title=axis_title, scale=scale))
    return chart.properties(height=BAR_ROW_PX * len(bars) + AXES_PX, usermeta=USERMETA)


def trace_chart(points: pd.DataFrame, span: dict[str, float | list[float]]) -> alt.Chart:
    """An energy window's current over time (a line), the span integrated between the last two
    timestamp edges (a shaded band) and every edge (a rule)."""
    line = alt.Chart(plain(points, ["time_s", "current_ma"])).mark_line().encode(
        x=alt.X("time_s", title="time in the window [s]"),
        y=alt.Y("current_ma", title="current [mA]"))
    band = alt.Chart(plain(pd.DataFrame({"start_s": [span["start_s"]],
                                         "stop_s": [span["stop_s"]]}),
                           ["start_s", "stop_s"])).mark_rect(opacity=0.15, color="#2a9d8f"
                                                             ).encode(x="start_s", x2="stop_s")
    edges = alt.Chart(plain(pd.DataFrame({"edge_s": list(span["events_s"])}), ["edge_s"])
                      ).mark_rule(color="#e76f51").encode(x="edge_s")
    return (band + line + edges).properties(height=300, usermeta=USERMETA)


def layers_chart(rows: pd.DataFrame, title: str) -> alt.Chart:
    """Where an inference's time goes: one bar per layer (``layer``, in execution order) as
    long as its ``amount`` (instructions or ms; ``title`` names it), its ``share_pct`` in the
    tooltip."""
    bars = plain(rows, ["amount", "share_pct"])
    return alt.Chart(bars).mark_bar(color="#264653").encode(
        x=alt.X("amount", title=title),
        y=alt.Y("layer", title=None, sort=list(bars["layer"]), axis=alt.Axis(labelLimit=0)),
        tooltip=["layer", "amount", alt.Tooltip("share_pct", title="share [%]", format=".1f")],
    ).properties(height=BAR_ROW_PX * len(bars) + AXES_PX, usermeta=USERMETA)


def layer_change_chart(change: pd.DataFrame) -> alt.Chart:
    """Per-layer change from cell A to cell B: one bar per layer (in execution order) as long
    as its ``change_pct``, red where B is slower, green where faster."""
    bars = plain(change.dropna(subset=["change_pct"]), ["change_pct", "A", "B"])
    return alt.Chart(bars).mark_bar().encode(
        x=alt.X("change_pct", title="change B vs A [%]"),
        y=alt.Y("layer", title=None, sort=list(bars["layer"]), axis=alt.Axis(labelLimit=0)),
        color=alt.condition("datum.change_pct > 0", alt.value("#e76f51"), alt.value("#2a9d8f")),
        tooltip=["layer", "A", "B",
                 alt.Tooltip("change_pct", title="change [%]", format="+.1f")],
    ).properties(height=BAR_ROW_PX * len(bars) + AXES_PX, usermeta=USERMETA)
