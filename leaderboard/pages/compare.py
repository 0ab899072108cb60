"""Compare: two runs side by side, regressions highlighted."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from leaderboard import charts, data
from leaderboard.pages import common
from leaderboard.plaintext import inline

st.title("Compare")
df = common.load()
runs = data.options(df, "run") if not df.empty else []
if not common.empty_store(df) and len(runs) < 2:
    st.info("Comparing needs two runs.")
elif runs:
    c1, c2 = st.columns(2)
    a = c1.selectbox("run A (baseline)", runs, index=len(runs) - 2, key="run_a")
    b = c2.selectbox("run B", runs, index=len(runs) - 1, key="run_b")
    present = [m for m in data.metric_names(df) if m in data.KEY_METRICS]
    metrics = st.multiselect("metrics", present,
                             default=[m for m in ["model_size", "latency_p50", "accuracy", "mae"]
                                      if m in present], key="metrics")
    tol = st.slider("tolerance for cost metrics (%)", 0, 100, 5, key="tol") / 100
    timing = data.timing_tests(common.results_dir(), a, b, tol)
    table = data.compare_runs(df, a, b, metrics, tol, timing)
    st.caption("A latency change is a regression only when it is significant (a bootstrap "
               "on the raw samples, else Welch's t; Holm-corrected, α 0.05) and beyond the "
               "tolerance; the verdict column says which.")
    n = int(table["regressed"].sum()) if not table.empty else 0
    (st.error if n else st.success)(f"{n} regression{'' if n == 1 else 's'} in {len(table)} cells "
                                    f"({inline(a)} → {inline(b)})")
    flags = [c for c in table.columns if c.startswith("regressed:")]
    shown = table.drop(columns=flags)

    def highlight(row: pd.Series) -> list[str]:
        styles = []
        for col in shown.columns:
            name = col.rsplit(" ", 1)[0]
            bad = bool(table.loc[row.name, f"regressed:{name}"]) if f"regressed:{name}" in \
                table.columns and col.endswith(" B") else False
            styles.append("background-color: #f8d7da" if bad or (
                col == "cell" and table.loc[row.name, "regressed"]) else "")
        return styles

    common.show(shown.style.apply(highlight, axis=1))

    st.subheader("Per-layer change")
    cells_a = df[df["run"] == a]["cell_id"].tolist()
    cells_b = df[df["run"] == b]["cell_id"].tolist()
    l1, l2 = st.columns(2)
    cell_a = l1.selectbox("cell A", cells_a, key="layers_a")
    same = cells_b.index(cell_a) if cell_a in cells_b else 0
    cell_b = l2.selectbox("cell B", cells_b, index=same, key="layers_b")
    record_a = data.get_record(common.results_dir(), a, cell_a) if cell_a else None
    record_b = data.get_record(common.results_dir(), b, cell_b) if cell_b else None
    if record_a is None or record_b is None:
        st.caption("Pick a cell of each run.")
    else:
        try:
            change, unit = data.layer_change(record_a.details, record_b.details)
        except ValueError as e:
            st.caption(inline(str(e)))
        else:
            st.caption(inline(f"{cell_a} → {cell_b}: each operator's {unit}, A then B, and "
                              "its change (the same graph, layer by layer)"))
            st.altair_chart(charts.layer_change_chart(change))
            shown = change.rename(columns={
                "A": f"A [{unit}]", "B": f"B [{unit}]", "change_pct": "change [%]",
                "share_A_pct": "share A [%]", "share_B_pct": "share B [%]"})
            common.show(shown)
