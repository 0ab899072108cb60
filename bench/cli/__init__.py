"""``edgebench``: the command line, a thin layer over the library.

Each sub-command module has ``register(subparsers)`` and sets ``func(args) -> int`` (the exit
status) on its parsers; :mod:`bench.cli.args` declares the arguments they share. Building the
parser imports no TensorFlow: commands import what they need when they run."""

from __future__ import annotations

import argparse
import logging
import sys

from bench.cli.args import add_verbose
from bench.files import DiskFull, LinkRefused


def parser() -> argparse.ArgumentParser:
    """The ``edgebench`` argument parser with every sub-command."""
    from bench.cli import (
        agent,
        board,
        compare,
        devices,
        estimate,
        export,
        firmware,
        leaderboard,
        runs,
        stream,
    )

    p = argparse.ArgumentParser(prog="edgebench", description=__doc__.splitlines()[0])
    add_verbose(p)
    sub = p.add_subparsers(dest="command", required=True)
    for module in (runs, compare, devices, export, firmware, stream, estimate, board,
                   leaderboard, agent):
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one ``edgebench`` command; returns its exit status (2 for a usage or input error)."""
    from bench.errors import SpecError

    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except DiskFull as e:  # the store holds every record written before; --resume goes on
        print(f"error: {e}; free some space, then resume (`edgebench run SUITE --resume`)",
              file=sys.stderr)
        return 3
    except LinkRefused as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except SpecError as e:
        print(f"error: invalid file\n{e}", file=sys.stderr)
        return 2
    except (LookupError, FileNotFoundError) as e:
        print(f"error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished cells are recorded; `edgebench run SUITE --resume` "
              "completes the run", file=sys.stderr)
        return 130
