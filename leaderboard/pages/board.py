"""Leaderboard (home): the latest run of each suite, models' variants ranked per device on a
chosen metric; older runs and every other cut in the sidebar; CSV."""

from __future__ import annotations

import streamlit as st

from bench.results.metrics import higher_is_better
from leaderboard import data, ranking
from leaderboard.pages import common
from leaderboard.plaintext import inline

ALL_SUITES = "all suites"

st.title("Leaderboard")
df = common.load()
if not common.empty_store(df):
    c1, c2 = st.columns(2)
    suite = c1.selectbox("suite", [ALL_SUITES, *data.options(df, "suite")], key="suite")
    scope = df if suite == ALL_SUITES else df[df["suite"] == suite]
    st.sidebar.caption("Empty filters keep every row; runs default to each suite's latest.")
    runs = st.sidebar.multiselect("run", sorted(data.options(scope, "run"), reverse=True),
                                  key="f_run", placeholder="latest of each suite")
    scope = scope[scope["run"].isin(runs or ranking.latest_runs(scope))]
    shown = common.filters(scope, ["model", "variant", "device", "runner", "status", "method"])
    metrics = ranking.rankable_metrics(shown)
    if not metrics:
        st.info("No cell in this selection has a figure to rank by.")
        st.stop()
    metric = c2.selectbox(
        "rank variants by", metrics, index=metrics.index(ranking.default_metric(metrics)),
        format_func=lambda m: f"{m} ({'higher' if higher_is_better(m) else 'lower'} is better)",
        key="rank_by")
    counts = shown["status"].value_counts()
    shown_runs = data.options(shown, "run")
    st.caption(f"{', '.join(f'{n} {s}' for s, n in counts.items())} — {len(shown)} cells "
               f"from {inline(', '.join(shown_runs) or 'no run')}")
    key = [m for m in data.metric_names(shown) if m in data.KEY_METRICS]
    extra = [m for m in data.metric_names(shown) if m not in data.KEY_METRICS]
    more = st.multiselect("more metrics", extra, key="more_metrics")
    board = ranking.board(shown, metric, key + more)
    st.dataframe(ranking.style(board), hide_index=True, placeholder="")
    st.caption(ranking.LEGEND)
    st.download_button("Download CSV", data.display_table(shown, data.metric_names(shown))
                       .to_csv(index=False), file_name="leaderboard.csv", mime="text/csv",
                       key="csv")
