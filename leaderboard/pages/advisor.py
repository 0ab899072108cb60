"""Deploy advisor: requirements in, edge / cloud / hybrid out, answered with the records."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from leaderboard import data
from leaderboard.advice import Requirements, advise
from leaderboard.pages import common

st.title("Deploy advisor")
df = common.load()
if not common.empty_store(df):
    df = common.filters(df, ["suite", "run", "method"])
    models = data.options(df[df["status"] == "ok"], "model")
    model = st.selectbox("model", models, key="model")
    c1, c2, c3 = st.columns(3)
    budget = c1.number_input("latency budget (ms)", 0.001, 1e6, 100.0, key="budget")
    rate = c2.number_input("sensor rate (inferences/s)", 0.0, 1e5, 1.0, key="rate")
    battery = c3.number_input("battery life needed (days, 0 = mains)", 0.0, 1e5, 0.0,
                              key="battery")
    privacy = st.checkbox("privacy-critical data", key="privacy")
    connected = st.checkbox("reliable connectivity", value=True, key="connected")
    bandwidth = st.checkbox("high-bandwidth data", key="bandwidth")
    req = Requirements(model=model or "", latency_budget_ms=budget, privacy_critical=privacy,
                       reliable_connectivity=connected, high_bandwidth=bandwidth,
                       sensor_rate_hz=rate, battery_days=battery)
    advice = advise(df, common.devices(), req)
    st.subheader(f"Recommendation: {advice.recommendation}")
    {"edge": st.success, "cloud": st.info, "hybrid": st.warning}[advice.recommendation](
        advice.summary)
    st.table(pd.DataFrame(advice.steps, columns=["question", "answer", "reason"]))
    if not advice.cells.empty:
        ok = advice.cells[advice.cells["meets_all"]]
        st.subheader(f"Cells meeting every requirement ({len(ok)} of {len(advice.cells)})")
        common.show(ok.drop(columns=["meets_all"]))
        with st.expander("all candidate cells"):
            common.show(advice.cells)
