"""Devices: a board's flash and RAM against each model × variant's need; which cells fit."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from leaderboard import charts, data
from leaderboard.pages import common
from leaderboard.plaintext import inline

st.title("Devices")
df = common.load()
devs = common.devices()
if devs.empty:
    st.info("No device files found (a `devices/` folder beside the results, or "
            "`$EDGEBENCH_DEVICES`).")
elif not common.empty_store(df):
    df = common.filters(df, ["suite", "run", "model"])
    device = st.selectbox("device", devs["device"].tolist(), key="device")
    dev = devs.set_index("device").loc[device]
    c1, c2, c3 = st.columns(3)
    c1.metric("flash", "–" if pd.isna(dev["flash_kb"]) else f"{dev['flash_kb']:g} KB")
    c2.metric("RAM", "–" if pd.isna(dev["ram_kb"]) else f"{dev['ram_kb']:g} KB")
    c3.metric("core", str(dev["core"]))
    fit = data.fit_table(df, dev["flash_kb"], dev["ram_kb"])
    fit.insert(0, "cell", fit["model"] + "/" + fit["variant"])
    st.caption(f"{int(fit['fits'].sum())} of {len(fit)} model × variant cells fit "
               f"{inline(device)}")
    for need, cap, title in (("flash_kb", dev["flash_kb"], "flash [KB]"),
                             ("ram_kb", dev["ram_kb"], "RAM [KB]")):
        bars = charts.fit_points(fit, need)
        if not bars.empty:
            st.altair_chart(charts.fit_chart(bars, cap, title))
    common.show(fit.drop(columns=["model", "variant"]))
