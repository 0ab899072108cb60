"""Trade-offs: a task metric against a cost, one colour per variant, the Pareto front."""

from __future__ import annotations

import altair as alt
import streamlit as st

from leaderboard import data
from leaderboard.pages import common

st.title("Trade-offs")
df = common.load()
if not common.empty_store(df):
    df = common.filters(df, ["suite", "run", "model", "method"])
    df = df[df["status"] == "ok"]
    tasks = [m for m in data.HIGHER_BETTER if m in df.columns and df[m].notna().any()]
    costs = [m for m in data.COSTS if m in df.columns and df[m].notna().any()]
    if not tasks or not costs:
        st.info("No cell has both a task metric and a cost metric.")
        st.stop()
    c1, c2, c3 = st.columns(3)
    y = c1.selectbox("task metric", tasks, key="y")
    x = c2.selectbox("against", costs, key="x")
    device = c3.selectbox("device", data.options(df.dropna(subset=[x, y]), "device"),
                          key="device")
    pts = df[(df["device"] == device)].dropna(subset=[x, y])
    higher = data.HIGHER_BETTER[y]
    front = data.pareto_front(pts, x, y, higher)
    xu, yu = data.unit_of(df, x), data.unit_of(df, y)
    st.caption(f"{len(pts)} cells on {device}; {len(front)} on the Pareto front "
               f"({'higher' if higher else 'lower'} {y} and lower {x} are better)")
    if not pts.empty:
        xt = data.header(x, xu)
        plot = pts.assign(**{xt: pts[x] / 1024 if xu == "B" else pts[x]})
        fplot = front.assign(**{xt: front[x] / 1024 if xu == "B" else front[x]})
        dots = alt.Chart(plot).mark_circle(size=90).encode(
            x=alt.X(xt, scale=alt.Scale(type="log")), y=alt.Y(y, title=data.header(y, yu)),
            color="variant", tooltip=["cell_id", "run", x, y])
        line = alt.Chart(fplot).mark_line(color="gray", strokeDash=[4, 3]).encode(x=xt, y=y)
        st.altair_chart(dots + line)
    st.subheader("Pareto front")
    st.dataframe(front[["cell_id", "variant", "run", x, y]].reset_index(drop=True),
                 hide_index=True)
