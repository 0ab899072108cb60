"""Leaderboard: one row per cell, filters, metrics with units, checks, deltas vs fp32, CSV."""

from __future__ import annotations

import streamlit as st

from leaderboard import data
from leaderboard.pages import common

st.title("Leaderboard")
df = common.load()
if not common.empty_store(df):
    shown = common.filters(df)
    counts = shown["status"].value_counts()
    st.caption(", ".join(f"{n} {s}" for s, n in counts.items()) + f" — {len(shown)} cells")
    extra = [m for m in data.metric_names(df) if m not in data.KEY_METRICS]
    more = st.multiselect("more metrics", extra, key="more_metrics")
    metrics = [m for m in data.metric_names(df) if m in data.KEY_METRICS] + more
    table = data.display_table(shown, metrics)
    st.dataframe(table, hide_index=True,
                 column_config={c: st.column_config.NumberColumn(c, format="%.4g")
                                for c in table.columns if table[c].dtype.kind == "f"})
    st.download_button("Download CSV", data.display_table(shown, data.metric_names(df))
                       .to_csv(index=False), file_name="leaderboard.csv", mime="text/csv",
                       key="csv")
