"""``edgebench board serve MODEL.tflite [--device ID] [--link pty|tcp] [--clock host|simulated]
[--mode performance|energy]``: a virtual MLPerf Tiny board, or in energy mode a virtual energy
bench (the board behind an IO manager, and an LPM01A-compatible monitor)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from bench.board.iomanager import DUT_BAUD
from bench.cli.args import add_devices_dir, read_device
from bench.results.formatting import duration, quantity
from bench.virtual.board import Board, PowerModel
from bench.virtual.energy_bench import EnergyBench
from bench.virtual.monitor import FAULTS as MONITOR_FAULTS

log = logging.getLogger(__name__)


def dut_baud(text: str) -> int:
    """``--dut-baud``: a UART speed, 300 to 10,000,000."""
    try:
        baud = int(text)
    except ValueError:
        baud = 0
    if not 300 <= baud <= 10_000_000:
        raise argparse.ArgumentTypeError(f"expected a baud rate from 300 to 10000000, got {text!r}")
    return baud


def cmd_serve(args: argparse.Namespace) -> int:
    from bench.virtual.board import PtyLink, TcpLink, serve

    device = (read_device(args.device, args.devices_dir).model_dump(mode="json")
              if args.device else None)
    if args.mode == "energy":
        return serve_energy(args, device)
    try:
        board = Board(args.model, device=device, clock=args.clock, fault=args.fault,
                      name=args.name, model_id=args.model_id, profile=args.profile)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    link = PtyLink() if args.link == "pty" else TcpLink(args.port)

    def stop(*_: object) -> None:  # at once, even in a paced inference window
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)

    def announce(address: str) -> None:
        extra = (f", simulated {duration(board.latency_us, 'µs')}/inference"
                 if board.latency_us is not None else "")
        print(f"port: {address}", flush=True)
        print(f"virtual board serving {args.model} as model {board.model_id!r}{extra}; "
              "Ctrl-C to stop", file=sys.stderr, flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        serve(board, link, announce)
    return 0


def serve_energy(args: argparse.Namespace, device: dict[str, Any] | None) -> int:
    """The virtual energy bench: prints ``port:`` (the IO manager) and ``monitor:`` lines."""
    if device is None:
        print("error: --mode energy needs --device (its power.active_mw is the board's power "
              "model)", file=sys.stderr)
        return 2
    try:
        board = Board(args.model, device=device, clock=args.clock, fault=args.fault,
                      name=args.name, model_id=args.model_id, mode="energy",
                      power=PowerModel.from_device(device), profile=args.profile)
        bench = EnergyBench(board, args.monitor_fault, args.dut_baud)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)

    def announce(io_port: str, monitor_port: str) -> None:
        power = board.power
        assert power is not None
        print(f"port: {io_port}\nmonitor: {monitor_port}", flush=True)
        print(f"virtual energy bench: IO manager {io_port}, LPM01A-compatible monitor "
              f"{monitor_port}; {args.model} as {board.model_id!r} drawing "
              f"{quantity(power.active_a * 1e3, 'mA')} active, "
              f"{quantity(power.idle_a * 1e3, 'mA')} idle; "
              "Ctrl-C to stop", file=sys.stderr, flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        bench.serve(announce)
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
                                             "overlong", "cut", "late-ready", "slow-error",
                                             "unwired"],
                         default=None,
                         help="misbehave on purpose (for tests); unwired: in energy mode the "
                              "timestamp pin does not reach the monitor")
    serve_p.add_argument("--mode", choices=["performance", "energy"], default="performance",
                         help="energy: the board in MLPerf Tiny's energy mode behind a virtual "
                              "IO manager (`port:`), with an LPM01A-compatible monitor "
                              "(`monitor:`) streaming its current from the device's power; "
                              "needs --device")
    serve_p.add_argument("--monitor-fault", choices=list(MONITOR_FAULTS),
                         default=None, help="the virtual monitor misbehaves on purpose (for "
                                            "tests)")
    serve_p.add_argument("--profile", action="store_true",
                         help="answer layers%% as edgebench's firmware built with profiling: "
                              "each operator's share of an invoke as the estimator splits it "
                              "for --device (without it: Unknown command, as stock firmware)")
    serve_p.add_argument("--dut-baud", type=dut_baud, default=DUT_BAUD, metavar="N",
                         help="energy mode: the DUT's UART speed behind the IO manager, which "
                              "relays at its pace (default %(default)s, as MLPerf Tiny's)")
    serve_p.add_argument("--name", default="edgebench-virtual-board", help="the name%% reply")
    serve_p.add_argument("--model-id", default=None,
                         help="the m-model reply (default: kws01, vww01, ic01, ad01 or strww01 "
                              "for an MLPerf Tiny reference model, known by its SHA-256; else "
                              "the model file's stem)")
    serve_p.set_defaults(func=cmd_serve)
