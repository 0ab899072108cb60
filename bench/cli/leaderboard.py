"""``edgebench leaderboard [--results DIR] [--port N] [--address A]``: serve the leaderboard."""

from __future__ import annotations

import argparse

from bench.cli.args import add_results
from leaderboard import serve


def cmd_leaderboard(args: argparse.Namespace) -> int:

    return serve(args.results, port=args.port, address=args.address, open_browser=args.browser)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``edgebench leaderboard`` to the CLI."""
    sp = sub.add_parser("leaderboard", help="serve the Streamlit leaderboard over a result store")
    add_results(sp)
    sp.add_argument("--port", type=int, default=8501, help="port (default: 8501)")
    sp.add_argument("--address", default="127.0.0.1",
                    help="address to listen on (default: 127.0.0.1, this machine only; "
                         "0.0.0.0 shares it on every interface)")
    sp.add_argument("--browser", action="store_true", help="open a browser window")
    sp.set_defaults(func=cmd_leaderboard)
