"""Devices: a board's flash and RAM against each model × variant's need; which cells fit."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from leaderboard import data
from leaderboard.pages import common

st.title("Devices")
df = common.load()
devs = common.devices()
if not common.empty_store(df) and not devs.empty:
    df = common.filters(df, ["suite", "run", "model"])
    device = st.selectbox("device", devs["device"].tolist(), key="device")
    dev = devs.set_index("device").loc[device]
    c1, c2, c3 = st.columns(3)
    c1.metric("flash", "–" if pd.isna(dev["flash_kb"]) else f"{dev['flash_kb']:g} KB")
    c2.metric("RAM", "–" if pd.isna(dev["ram_kb"]) else f"{dev['ram_kb']:g} KB")
    c3.metric("core", str(dev["core"]))
    fit = data.fit_table(df, dev["flash_kb"], dev["ram_kb"])
    fit.insert(0, "cell", fit["model"] + "/" + fit["variant"])
    st.caption(f"{int(fit['fits'].sum())} of {len(fit)} model × variant cells fit {device}")
    for need, cap in (("flash_kb", dev["flash_kb"]), ("ram_kb", dev["ram_kb"])):
        bars = alt.Chart(fit.dropna(subset=[need])).mark_bar().encode(
            x=alt.X(need, title=need.replace("_kb", " KB")), y=alt.Y("cell", sort="-x"),
            color=alt.Color("fits", scale=alt.Scale(domain=[True, False],
                                                    range=["#2a9d8f", "#e76f51"])))
        chart = bars
        if pd.notna(cap):
            chart = bars + alt.Chart(pd.DataFrame({need: [cap]})).mark_rule(
                color="red", strokeWidth=2).encode(x=need)
        st.altair_chart(chart)
    st.dataframe(fit.drop(columns=["model", "variant"]), hide_index=True)
