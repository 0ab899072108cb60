"""Trade-offs: a task metric against a cost, one colour per variant, the Pareto front — over
the models of one data set (a front across tasks would compare nothing)."""

from __future__ import annotations

import streamlit as st

from bench.results.metrics import higher_is_better
from leaderboard import charts, data
from leaderboard.pages import common
from leaderboard.plaintext import inline

st.title("Trade-offs")
df = common.load()
if not common.empty_store(df):
    df = common.filters(df, ["suite", "run", "model", "method"])
    df = df[df["status"] == "ok"]
    tasks, costs = data.task_metrics(df), data.cost_metrics(df)
    if not tasks or not costs:
        st.info("No cell has both a task metric and a cost metric.")
        st.stop()
    c1, c2, c3 = st.columns(3)
    y = c1.selectbox("task metric", tasks, key="y")
    x = c2.selectbox("against", costs, key="x",
                     index=costs.index("latency_p50") if "latency_p50" in costs else 0)
    device = c3.selectbox("device", data.options(df.dropna(subset=[x, y]), "device"),
                          key="device")
    cells = df[df["device"] == device].dropna(subset=[x, y])
    groups = data.dataset_groups(cells)
    dataset = st.selectbox("data set", groups, key="dataset",
                           help="One front per data set: the largest group first")
    cells = data.on_dataset(cells, dataset) if dataset is not None else cells
    models = data.options(cells, "model")
    compared = f"{len(models)} model{'' if len(models) == 1 else 's'} on {dataset}: " \
               f"{', '.join(models)}"
    higher = bool(higher_is_better(y))
    points = charts.tradeoff_points(cells, data.display_values(cells, x),
                                    data.display_values(cells, y),
                                    data.display_interval(cells, x),
                                    data.display_interval(cells, y))
    front = data.pareto_front(points, "x", "y", higher)
    x_title, y_title = data.header(x, data.unit_of(df, x)), data.header(y, data.unit_of(df, y))
    st.caption(f"Compares {inline(compared)}" + (f" ({len(groups) - 1} other data set"
               f"{'' if len(groups) == 2 else 's'}: choose above)" if len(groups) > 1 else ""))
    st.caption(f"{len(points)} cells on {inline(device)}; {len(front)} on the Pareto front "
               f"({'higher' if higher else 'lower'} {inline(y)} and lower {inline(x)} are better)"
               + ("; bars: the 80 % interval of estimated figures"
                  if {"x_low", "y_low"} & set(points.columns) else ""))
    if not points.empty:
        st.altair_chart(charts.tradeoff_chart(points, front, x_title, y_title, compared))
    st.subheader("Pareto front")
    common.show(front[["cell_id", "variant", "run", "x", "y"]]
                .rename(columns={"x": x_title, "y": y_title}))
