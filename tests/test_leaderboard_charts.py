"""What the pages hand to Vega-Lite, and how free text is put into Markdown."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from leaderboard import charts
from leaderboard.plaintext import inline


def _fields(spec: Any) -> set[str]:
    """Every ``field`` an encoding of a Vega-Lite spec names."""
    if isinstance(spec, dict):
        own = {spec["field"]} if isinstance(spec.get("field"), str) else set()
        return own.union(*(_fields(v) for v in spec.values()))
    if isinstance(spec, list):
        return set().union(*(_fields(v) for v in spec))
    return set()


def _values(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [row for data in spec.get("datasets", {}).values() for row in data]


def test_plain_refuses_nested_field_names_and_drops_non_finite_rows() -> None:
    with pytest.raises(ValueError, match=r"latency_p50 \[ms\]"):
        charts.plain(pd.DataFrame({"latency_p50 [ms]": [1.0]}), ["latency_p50 [ms]"])
    with pytest.raises(ValueError, match="a.b"):
        charts.plain(pd.DataFrame({"a.b": [1.0]}), [])
    df = pd.DataFrame({"x": [1.0, float("nan"), math.inf, 2.0], "y": [1, 2, 3, None]})
    assert charts.plain(df, ["x", "y"])["x"].tolist() == [1.0]


def test_tradeoff_chart_encodes_plain_finite_fields() -> None:
    cells = pd.DataFrame({"variant": ["fp32", "int8", "int8"], "cell_id": ["a", "b", "c"],
                          "run": ["r", "r", "r"]})
    points = charts.tradeoff_points(cells, pd.Series([1.0, 0.5, math.inf]),
                                    pd.Series([0.9, 0.8, 0.7]))
    assert len(points) == 2  # the infinite latency is not plotted
    spec = charts.tradeoff_chart(points, points.iloc[:1], "latency_p50 [ms]",
                                 "accuracy").to_dict()
    assert all(f.isidentifier() for f in _fields(spec)), _fields(spec)
    assert {"x", "y", "variant"} <= _fields(spec)
    for row in _values(spec):
        assert math.isfinite(row["x"]) and math.isfinite(row["y"])
    titles = {layer["encoding"]["x"]["title"] for layer in spec["layer"]}
    assert titles == {"latency_p50 [ms]"}  # the unit is in the title, not the field
    assert spec["layer"][0]["encoding"]["x"]["scale"]["type"] == "log"
    assert spec["usermeta"]["embedOptions"]["renderer"] == "svg"


def test_tradeoff_chart_is_linear_when_a_cost_is_zero() -> None:
    cells = pd.DataFrame({"variant": ["a", "b"], "cell_id": ["a", "b"], "run": ["r", "r"]})
    points = charts.tradeoff_points(cells, pd.Series([0.0, 3.0]), pd.Series([0.5, 0.6]))
    spec = charts.tradeoff_chart(points, points, "misses", "accuracy").to_dict()
    assert spec["layer"][0]["encoding"]["x"]["scale"]["type"] == "linear"  # log(0) = -inf


def test_tradeoff_front_is_labelled_and_many_variants_keep_their_colours() -> None:
    variants = [f"v{i}" for i in range(12)]
    cells = pd.DataFrame({"variant": variants, "model": ["cnn"] * 12, "run": ["r"] * 12,
                          "cell_id": [f"cnn/{v}@host" for v in variants]})
    points = charts.tradeoff_points(cells, pd.Series(range(1, 13), dtype=float),
                                    pd.Series([0.5 + i / 100 for i in range(12)]))
    assert points["label"].tolist() == variants  # one model: the variant says it all
    spec = charts.tradeoff_chart(points, points.iloc[[0, 11]], "size [KB]", "accuracy").to_dict()
    dots, _, *labels = spec["layer"]
    assert dots["encoding"]["color"]["scale"]["scheme"] == "category20"  # 12 > 10 colours
    assert [layer["mark"]["type"] for layer in labels] == ["text", "text"]
    assert {layer["encoding"]["text"]["field"] for layer in labels} == {"label"}
    shown = [row["label"] for row in _values(spec) if "label" in row]
    assert sorted(set(shown) & {"v0", "v11"}) == ["v0", "v11"]  # the front's points, labelled
    two = cells.assign(model=["cnn"] * 11 + ["student"])
    two.loc[11, "cell_id"] = "student/v11@host"
    labelled = charts.tradeoff_points(two, pd.Series([1.0] * 12), pd.Series([0.5] * 12))
    assert labelled["label"].iloc[-1] == "student/v11"  # several models: model/variant


def test_fit_chart_encodes_plain_finite_fields() -> None:
    fit = pd.DataFrame({"cell": ["kws/fp32", "big/fp32", "x/int8"],
                        "flash_kb": [97.7, 2929.7, float("nan")], "fits": [True, False, True]})
    bars = charts.fit_points(fit, "flash_kb")
    assert bars["cell"].tolist() == ["kws/fp32", "big/fp32"]
    spec = charts.fit_chart(bars, 2048.0, "flash [KB]").to_dict()
    assert _fields(spec) == {"cell", "need_kb", "fits", "capacity_kb"}
    assert all(math.isfinite(v) for row in _values(spec) for k, v in row.items()
               if k in ("need_kb", "capacity_kb"))
    no_cap = charts.fit_chart(bars, float("nan"), "flash [KB]").to_dict()
    assert "layer" not in no_cap  # no capacity, no rule
    assert no_cap["encoding"]["y"]["axis"]["labelLimit"] == 0  # whole cell names, not "kws/…"


@pytest.mark.parametrize("text", [
    "![x](https://example.com/a.png)", "[t](u)", "https://example.com/b", "a@example.com",
    "<b>bold</b> <img src=x>", "**strong** _em_ `code` ``two``", "$x^2$ :red[red] :smile:",
    "# heading\n- item\n1. item", "`", "trailing `",
])
def test_inline_free_text_is_a_verbatim_code_span(text: str) -> None:
    markdown_it = pytest.importorskip("markdown_it")
    html = markdown_it.MarkdownIt("commonmark").render(f"cell {inline(text)} shown")
    assert "<a " not in html and "<img" not in html and "<em>" not in html
    assert html.count("<code>") == 1 and "<strong>" not in html
    body = html[html.index("<code>") + 6:html.index("</code>")]
    unescaped = body.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"') \
        .replace("&amp;", "&")
    assert unescaped == " ".join(text.split())


def test_fit_chart_axis_turns_logarithmic_beyond_a_hundredfold_range() -> None:
    from leaderboard.charts import fit_chart, log_axis

    assert not log_axis(pd.Series([30.0, 3000.0]))  # exactly 100×: linear
    assert log_axis(pd.Series([3.0, 6700.0]))
    assert log_axis(pd.Series([30.0, 300.0]), capacity=0.2)  # the capacity counts too
    assert not log_axis(pd.Series([0.0, 6700.0]))  # a zero has no place on a log axis
    bars = pd.DataFrame({"cell": ["a/fp32", "b/fp32"], "need_kb": [3.0, 6700.0],
                         "fits": [True, False]})
    spec = fit_chart(bars, 2048.0, "flash [KB]").to_dict()
    bar, rule = spec["layer"]
    assert bar["encoding"]["x"]["scale"]["type"] == "log"
    assert bar["encoding"]["x"]["title"] == "flash [KB] (log scale)"
    assert bar["encoding"]["x"]["field"] == "floor_kb"
    assert bar["encoding"]["x2"]["field"] == "need_kb"
    assert rule["encoding"]["x"]["scale"]["type"] == "log"  # the capacity line, kept
    linear = fit_chart(bars.assign(need_kb=[30.0, 300.0]), 2048.0, "flash [KB]").to_dict()
    assert "scale" not in linear["layer"][0]["encoding"]["x"] or \
        linear["layer"][0]["encoding"]["x"]["scale"].get("type") != "log"
