"""The edgebench leaderboard: a Streamlit app over the result store (navigation only).

``edgebench leaderboard [--results DIR]`` runs it; the store is ``$EDGEBENCH_RESULTS``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run leaderboard/app.py` puts only leaderboard/ there
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

PAGES = Path(__file__).resolve().parent / "pages"

st.set_page_config(page_title="edgebench leaderboard", layout="wide")
st.navigation([
    st.Page(PAGES / "board.py", title="Leaderboard", default=True),
    st.Page(PAGES / "tradeoffs.py", title="Trade-offs"),
    st.Page(PAGES / "devices.py", title="Devices"),
    st.Page(PAGES / "run_detail.py", title="Run detail"),
    st.Page(PAGES / "compare.py", title="Compare"),
    st.Page(PAGES / "advisor.py", title="Deploy advisor"),
]).run()
