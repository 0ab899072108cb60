"""The edgebench leaderboard: a Streamlit app over the result store.

``edgebench leaderboard`` serves it through :func:`serve`; the app reads the store named by
``$EDGEBENCH_RESULTS``. ``data`` is the pandas data layer, ``ranking`` the home page's table,
``charts`` the Altair charts, ``history`` a cell's runs and change points, ``advice`` the
deploy advisor, ``plaintext`` how free text is shown; ``app.py`` is the entry script and
``pages/`` holds one script per page.

Streamlit puts the entry script's folder first on ``sys.path``, so no module here may share a
name with a standard-library module.
"""

from __future__ import annotations

from leaderboard.serve import RESULTS_ENV, app_path, command, serve

#: The app's pages: script under ``pages/``, title and URL path; the first is the home page.
PAGES: list[tuple[str, str, str]] = [
    ("board.py", "Leaderboard", ""),
    ("tradeoffs.py", "Trade-offs", "tradeoffs"),
    ("devices.py", "Devices", "devices"),
    ("run_detail.py", "Run detail", "run_detail"),
    ("compare.py", "Compare", "compare"),
    ("history.py", "History", "history"),
    ("advisor.py", "Deploy advisor", "advisor"),
]

__all__ = ["PAGES", "RESULTS_ENV", "app_path", "command", "serve"]
