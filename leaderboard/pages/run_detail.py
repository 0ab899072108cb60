"""Run detail: one cell's record — metrics, error, constraint table, provenance."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from leaderboard import data
from leaderboard.pages import common

st.title("Run detail")
df = common.load()
if not common.empty_store(df):
    runs = data.options(df, "run")
    run = st.selectbox("run", runs, index=len(runs) - 1, key="run")
    cells = df[df["run"] == run]["cell_id"].tolist()
    cell = st.selectbox("cell", cells, key="cell")
    record = data.get_record(common.results_dir(), run, cell) if cell else None
    if record is None:
        st.warning("No such record (the store changed?).")
        st.stop()
    st.subheader(record.cell_id)
    st.markdown(f"**status** `{record.status}` · **runner** `{record.runner}` · "
                f"**artifact** `{(record.artifact_sha256 or '–')[:16]}`")
    if record.error:
        st.error(f"{record.error.get('kind')}: {record.error.get('message')}")
    st.subheader("Metrics")
    st.dataframe(pd.DataFrame([{"metric": k, "value": m.value, "unit": m.unit,
                                "method": m.method} for k, m in record.metrics.items()]),
                 hide_index=True)
    st.subheader("Constraints")
    if record.constraints:
        st.table(pd.DataFrame([{"check": k, "metric": c.metric, "limit": c.limit,
                                "value": c.value,
                                "result": {True: "✓ pass", False: "✗ fail"}.get(c.passed, "n/a")}
                               for k, c in record.constraints.items()]))
    else:
        st.caption("no constraints")
    st.subheader("Provenance")
    st.json(record.provenance, expanded=False)
    st.subheader("Details")
    st.json(record.details, expanded=False)
