"""Shared page helpers: the results folder, cached loading, sidebar filters and tables."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from leaderboard import data
from leaderboard.plaintext import inline
from leaderboard.serve import RESULTS_ENV


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
def _devices(beside_results: str) -> pd.DataFrame:
    return data.device_table([Path(beside_results)])


def devices() -> pd.DataFrame:
    """Device files: ``devices/`` beside the result store, then the library's search path."""
    return _devices(str(results_dir().resolve().parent / "devices"))


def filters(df: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Sidebar multiselects (key ``f_<column>``); the rows matching every choice."""
    chosen = {}
    for column in columns or data.FILTERS:
        chosen[column] = st.sidebar.multiselect(column, data.options(df, column),
                                                key=f"f_{column}")
    return data.apply_filters(df, chosen)


def empty_store(df: pd.DataFrame) -> bool:
    if df.empty:
        st.info(f"No records under {inline(results_dir())}: run `edgebench run SUITE` "
                "first.")
        return True
    return False


def blank_empty(table: pd.DataFrame | Styler) -> Styler:
    """A table whose empty cells show blank (not ``None``/``nan``), floats as
    :func:`leaderboard.data.number` writes them."""
    styler = table if isinstance(table, Styler) else table.style
    floats = [c for c in styler.data.columns if styler.data[c].dtype.kind == "f"]
    return styler.format(na_rep="").format(data.number, subset=floats, na_rep="")


def show(table: pd.DataFrame | Styler, **kwargs: object) -> None:
    """``st.dataframe`` without the index, empty cells blank."""
    st.dataframe(blank_empty(table), hide_index=True, placeholder="", **kwargs)
