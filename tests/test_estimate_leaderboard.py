"""The leaderboard shows an estimate's interval: in the ranked table and as error bars."""

from __future__ import annotations

import pandas as pd

from bench.results.metrics import Metric
from bench.results.record import Record
from bench.results.table import frame
from leaderboard import charts, data, ranking


def _record(variant: str, latency: Metric, accuracy: float) -> Record:
    return Record(suite="s", run_id="r", cell_id=f"m/{variant}@board", model="m",
                  variant=variant, device="board", runner=latency.method, status="ok",
                  metrics={"latency_p50": latency,
                           "accuracy": Metric(accuracy, "", "tflm"),
                           "arena_used": Metric(20480.0, "B", "tflm", 16384.0, 24576.0)})


def _frame() -> pd.DataFrame:
    df = frame([_record("int8", Metric(82.04, "ms", "estimated", 68.3, 110.2), 0.9),
                _record("fp32", Metric(150.0, "ms", "board"), 0.92)])
    return df.assign(run="s/r", suite="s", run_id="r")


def test_intervals_in_display_units() -> None:
    df = _frame()
    low, high = data.display_interval(df, "latency_p50")
    assert low.iloc[0] == 68.3 and high.iloc[0] == 110.2 and pd.isna(low.iloc[1])
    kb = data.display_interval(df, "arena_used")
    assert kb[0].iloc[0] == 16.0 and kb[1].iloc[0] == 24.0  # bytes shown as KB
    assert data.display_interval(df, "accuracy") is None
    assert data.with_interval(82.04, 68.3, 110.2) == "82.04 (68.3–110.2)"


def test_board_shows_the_interval_of_estimates_only() -> None:
    b = ranking.board(_frame(), "accuracy", ["latency_p50"])
    html = ranking.style(b).to_html()
    assert "≈ 82.04 (68.3–110.2)" in html
    assert "150 (" not in html and ">150<" in html.replace(" ", "")
    assert "interval" in ranking.LEGEND


def test_tradeoff_chart_draws_error_bars() -> None:
    df = _frame()
    points = charts.tradeoff_points(df, data.display_values(df, "latency_p50"),
                                    data.display_values(df, "accuracy"),
                                    data.display_interval(df, "latency_p50"),
                                    data.display_interval(df, "accuracy"))
    assert {"x_low", "x_high"} <= set(points.columns) and "y_low" not in points
    front = data.pareto_front(points, "x", "y", True)
    spec = charts.tradeoff_chart(points, front, "latency_p50 [ms]", "accuracy").to_dict()
    rules = [layer for layer in spec["layer"]
             if (layer.get("mark") == "rule" or (isinstance(layer.get("mark"), dict)
                                                 and layer["mark"].get("type") == "rule"))]
    assert len(rules) == 1 and rules[0]["encoding"]["x2"]["field"] == "x_high"
    plain = charts.tradeoff_points(df, data.display_values(df, "latency_p50"),
                                   data.display_values(df, "accuracy"))
    no_bars = charts.tradeoff_chart(plain, front, "latency_p50 [ms]", "accuracy").to_dict()
    assert not [layer for layer in no_bars["layer"] if "rule" in str(layer.get("mark"))]
