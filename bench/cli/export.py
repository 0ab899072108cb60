"""``edgebench export ARTIFACT_OR_CELL --format c [--out DIR] [--name NAME]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.artifacts.cache import Cache
from bench.artifacts.export import c_identifier, write_c
from bench.cli.args import add_cache, add_model_target, add_results


def cmd_export(args: argparse.Namespace) -> int:
    from bench.results.resolve import resolve
    from bench.results.store import Store

    found = resolve(args.target, Store(Path(args.results)), Cache(args.cache), args.run)
    name = args.name or found.name
    arena = args.arena if args.arena is not None else found.arena_bytes
    try:
        header, source = write_c(found.tflite, args.out, name, arena, found.source)
    except ValueError as e:
        hint = f" (try --name {c_identifier(name)})" if c_identifier(name) != name else ""
        print(f"error: {e}{hint}", file=sys.stderr)
        return 2
    arena_note = f", arena {arena} B" if arena is not None else ", arena not measured"
    print(f"{found.source}: {len(found.tflite)} B as {name}[]{arena_note}")
    print(f"wrote {header}\nwrote {source}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``edgebench export`` to the CLI."""
    sp = sub.add_parser("export", help="write a model as C source for firmware "
                                       "(model_data.h / model_data.cc)")
    add_model_target(sp)
    sp.add_argument("--format", choices=["c"], default="c",
                    help="c: an aligned const unsigned char array, as xxd -i")
    sp.add_argument("--out", type=Path, default=Path("."), help="output folder (default: .)")
    sp.add_argument("--name", help="C name of the array (default: from the file or cell)")
    sp.add_argument("--run", help="run id, id prefix or suite/run_id (default: the latest)")
    add_results(sp)
    add_cache(sp)
    sp.add_argument("--arena", type=int, default=None,
                    help="arena bytes for the header comment (default: the tflm record's)")
    sp.set_defaults(func=cmd_export)
