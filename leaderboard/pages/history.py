"""History: one cell's latency across the runs of its suite, change points marked."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from leaderboard import data, history
from leaderboard.pages import common
from leaderboard.plaintext import inline


@st.cache_data(show_spinner=False)
def _cells(root: str, suite: str, signature: tuple) -> list[str]:  # signature: cache key
    return history.cells_with_latency(history.timed_runs(root, suite))


@st.cache_data(show_spinner="Testing each step…")
def _history(root: str, suite: str, cell: str, tol: float, signature: tuple) -> pd.DataFrame:
    return history.cell_history(history.timed_runs(root, suite), cell, tol)


st.title("History")
df = common.load()
if not common.empty_store(df):
    suites = data.options(df, "suite")
    suite = st.selectbox("suite", suites, key="suite")
    root = common.results_dir()
    signature = data.store_signature(root)  # recomputed when a records file changes
    cells = _cells(str(root), suite, signature)
    if not cells:
        st.info("No run of this suite has a latency.")
        st.stop()
    cell = st.selectbox("cell", cells, key="cell")
    tol = st.slider("tolerance (%)", 0, 100, 5, key="tol") / 100
    h = _history(str(root), suite, cell, tol, signature)
    points = int(h["change_point"].sum())
    st.caption(f"{len(h)} runs of {inline(cell)}; {points} change points (a step between "
               "consecutive runs that is significant — a bootstrap on raw samples, else "
               "Welch's t; Holm-corrected — and beyond the tolerance)")
    st.altair_chart(history.history_chart(h, "latency_p50 [ms]"))
    common.show(h.rename(columns={"latency": "latency_p50 [ms]"}))
