"""The leaderboard app's entry script (navigation only): ``streamlit run`` this file, as
:func:`leaderboard.serve` does."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from leaderboard import PAGES

HERE = Path(__file__).resolve().parent

#: While a page computes, Streamlit's status widget offers a "Stop" button (and "Rerun" when
#: a source file changed): controls for the app's developer, hidden from its users.
HIDE_DEVELOPER_BUTTONS = "<style>[data-testid='stStatusWidget'] button {display: none;}</style>"

st.set_page_config(page_title="edgebench leaderboard", layout="wide")
st.html(HIDE_DEVELOPER_BUTTONS)
st.navigation([
    st.Page(HERE / "pages" / script, title=title, url_path=url_path or None, default=not url_path)
    for script, title, url_path in PAGES
]).run()
