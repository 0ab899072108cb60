"""Shared page helpers: the results folder, cached loading and the sidebar filters."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from leaderboard import data

RESULTS_ENV = "EDGEBENCH_RESULTS"


def results_dir() -> Path:
    """The result store: ``$EDGEBENCH_RESULTS`` or ``./results``."""
    return Path(os.environ.get(RESULTS_ENV, "results"))


@st.cache_data(show_spinner="Loading records…")
def _load(root: str, signature: tuple) -> pd.DataFrame:  # signature: part of the cache key
    return data.load_frame(root)


def load() -> pd.DataFrame:
    """Every record of the store; re-read when a records or manifest file changes."""
    root = results_dir()
    return _load(str(root), data.store_signature(root))


@st.cache_data
def devices() -> pd.DataFrame:
    return data.device_table()


def filters(df: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Sidebar multiselects (key ``f_<column>``); the rows matching every choice."""
    chosen = {}
    for column in columns or data.FILTERS:
        chosen[column] = st.sidebar.multiselect(column, data.options(df, column),
                                                key=f"f_{column}")
    return data.apply_filters(df, chosen)


def empty_store(df: pd.DataFrame) -> bool:
    if df.empty:
        st.info(f"No records under `{results_dir()}`: run `edgebench run SUITE` first.")
        return True
    return False
