"""``edgebench board serve MODEL.tflite [--device ID] [--link pty|tcp] [--clock host|simulated]``:
a virtual MLPerf Tiny board."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from pathlib import Path

from bench.cli.args import add_devices_dir, read_device

log = logging.getLogger(__name__)


def cmd_serve(args: argparse.Namespace) -> int:
    from bench.virtual.board import Board, PtyLink, TcpLink, serve

    device = (read_device(args.device, args.devices_dir).model_dump(mode="json")
              if args.device else None)
    try:
        board = Board(args.model, device=device, clock=args.clock, fault=args.fault,
                      name=args.name, model_id=args.model_id)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    link = PtyLink() if args.link == "pty" else TcpLink(args.port)

    def stop(*_: object) -> None:  # at once, even in a paced inference window
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)

    def announce(address: str) -> None:
        extra = (f", simulated {board.latency_us:.1f} us/inference"
                 if board.latency_us is not None else "")
        print(f"port: {address}", flush=True)
        print(f"virtual board serving {args.model} as model {board.model_id!r}{extra}; "
              "Ctrl-C to stop", file=sys.stderr, flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        serve(board, link, announce)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``edgebench board serve`` to the CLI."""
    sp = sub.add_parser("board", help="a virtual board speaking the MLPerf Tiny serial protocol")
    bsub = sp.add_subparsers(dest="board_command", required=True)
    serve_p = bsub.add_parser("serve", help="serve a model as MLPerf Tiny firmware on a "
                                            "pseudo-terminal or loopback TCP port (prints it)")
    serve_p.add_argument("model", type=Path, help="the .tflite model the board runs")
    serve_p.add_argument("--device", help="device id or file whose estimated latency drives "
                                          "the simulated clock")
    add_devices_dir(serve_p)
    serve_p.add_argument("--link", choices=["pty", "tcp"], default="pty")
    serve_p.add_argument("--port", type=int, default=0, help="TCP port (default: any free)")
    serve_p.add_argument("--clock", choices=["host", "simulated"], default="host",
                         help="m-lap-us from the host clock or the device's simulated clock "
                              "(replies paced so wall time never falls behind it)")
    serve_p.add_argument("--fault", choices=["garbage", "silence", "error", "reset", "split",
                                             "overlong", "cut", "late-ready"],
                         default=None,
                         help="misbehave on purpose (for tests)")
    serve_p.add_argument("--name", default="edgebench-virtual-board", help="the name%% reply")
    serve_p.add_argument("--model-id", default=None,
                         help="the m-model reply (default: kws01, vww01, ic01, ad01 or strww01 "
                              "for an MLPerf Tiny reference model, known by its SHA-256; else "
                              "the model file's stem)")
    serve_p.set_defaults(func=cmd_serve)
