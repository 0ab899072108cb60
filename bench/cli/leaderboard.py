"""``edgebench leaderboard [--results DIR] [--port N]``: serve the Streamlit leaderboard."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from bench.cli.args import add_results

APP = Path(__file__).resolve().parents[2] / "leaderboard" / "app.py"
RESULTS_ENV = "EDGEBENCH_RESULTS"


def command(results: Path, port: int, headless: bool = True) -> list[str]:
    """The ``streamlit run`` command line serving the app."""
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
            "--server.headless", "true" if headless else "false",
            "--browser.gatherUsageStats", "false"]


def cmd_leaderboard(args: argparse.Namespace) -> int:
    results = Path(args.results).resolve()
    if not results.is_dir():
        raise FileNotFoundError(f"no result store at {results}; run `edgebench run SUITE` first")
    if not APP.is_file():
        raise FileNotFoundError(f"leaderboard app not found at {APP} (needs a source checkout)")
    env = {**os.environ, RESULTS_ENV: str(results)}
    print(f"serving {results} on http://localhost:{args.port}", file=sys.stderr)
    try:
        return subprocess.call(command(results, args.port, not args.browser), env=env)
    except KeyboardInterrupt:
        return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``edgebench leaderboard`` to the CLI."""
    sp = sub.add_parser("leaderboard", help="serve the Streamlit leaderboard over a result store")
    add_results(sp)
    sp.add_argument("--port", type=int, default=8501, help="port (default: 8501)")
    sp.add_argument("--browser", action="store_true", help="open a browser window")
    sp.set_defaults(func=cmd_leaderboard)
