"""History: one cell's latency across the runs of its suite, change points marked."""

from __future__ import annotations

import streamlit as st

from leaderboard import data, history
from leaderboard.pages import common
from leaderboard.plaintext import inline

st.title("History")
df = common.load()
if not common.empty_store(df):
    suites = data.options(df, "suite")
    suite = st.selectbox("suite", suites, key="suite")
    runs = history.timed_runs(common.results_dir(), suite)
    cells = history.cells_with_latency(runs)
    if not cells:
        st.info("No run of this suite has a latency.")
        st.stop()
    cell = st.selectbox("cell", cells, key="cell")
    tol = st.slider("tolerance (%)", 0, 100, 5, key="tol") / 100
    h = history.cell_history(runs, cell, tol)
    points = int(h["change_point"].sum())
    st.caption(f"{len(h)} runs of {inline(cell)}; {points} change points (a step between "
               "consecutive runs that is significant — a bootstrap on raw samples, else "
               "Welch's t; Holm-corrected — and beyond the tolerance)")
    st.altair_chart(history.history_chart(h, "latency_p50 [ms]"))
    common.show(h.rename(columns={"latency": "latency_p50 [ms]"}))
