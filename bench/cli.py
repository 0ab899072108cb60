"""``edgebench run | list | show | results | schema`` — a thin layer over the library."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path

from bench.spec import SpecError

log = logging.getLogger("bench")


def _results_dir(args: argparse.Namespace) -> Path:
    return Path(args.results)


def cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from bench import table
    from bench.session import Session
    from bench.spec import load_suite
    from bench.store import Store

    suite = load_suite(args.suite)
    session = Session(suite, Store(_results_dir(args)), devices_dirs=args.devices_dir)
    with tqdm(total=len(session.cells), unit="cell", file=sys.stderr,
              disable=args.quiet or None) as bar:
        def progress(record):  # noqa: ANN001 - a Record
            bar.update(1)
            bar.set_postfix_str(f"{record.cell_id} {record.status}")

        session.on_record = progress
        run = session.run(resume=args.resume)
    print(f"run {run.suite}/{run.run_id} → {run.records_path}")
    records = run.records()
    print(table.render(records))
    if suite.report:
        print(table.render_report(records, [t.model_dump(mode="json") for t in suite.report],
                                  suite.settings.reference_variant))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from bench.matrix import plan
    from bench.session import resolve_devices
    from bench.spec import load_suite

    suite = load_suite(args.suite)
    resolve_devices(suite, args.devices_dir)
    for cell in plan(suite):
        print(cell.id)
    return 0


def _run_or_latest(args: argparse.Namespace):  # noqa: ANN202 - a Run
    from bench.store import Store

    store = Store(_results_dir(args))
    run = store.find(args.run) if args.run else store.latest()
    if run is None:
        raise LookupError(f"no runs under {store.root}; start one with `edgebench run SUITE`")
    return run


def cmd_show(args: argparse.Namespace) -> int:
    from bench import table

    run = _run_or_latest(args)
    records = run.records()
    if args.checks:
        from bench.constraints import render_validation

        chosen = [r for r in records if r.cell_id == args.checks]
        if not chosen:
            raise LookupError(f"no cell {args.checks!r} in run {run.suite}/{run.run_id}")
        print(render_validation(chosen[0]))
        return 0
    print(f"{run.suite}/{run.run_id}")
    print(table.render(records, width=args.width))
    manifest = run.manifest()
    if manifest.get("report"):
        print(table.render_report(records, manifest["report"],
                                  manifest.get("reference_variant", "fp32")))
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    from bench import table
    from bench.store import Store

    store = Store(_results_dir(args))
    runs = [_run_or_latest(args)] if args.run or not args.all else store.runs()
    records = [r for run in runs for r in run.records()]
    if args.format == "json":
        for r in records:
            print(json.dumps(r.to_json(), ensure_ascii=False, default=str))
    else:
        table.frame(records).to_csv(sys.stdout, index=False)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from bench.spec import suite_schema

    print(json.dumps(suite_schema(), indent=2))
    return 0


#: Modules that add sub-commands: each has ``register(subparsers) -> None`` and sets ``func`` on
#: its parsers (``func(args) -> int`` exit status). Imported when the parser is built, so keep
#: their top level light (no TensorFlow).
COMMAND_MODULES: list[str] = ["bench.commands.devices", "bench.commands.export",
                              "bench.commands.stream", "bench.estimate.commands",
                              "bench.commands.board", "bench.commands.leaderboard"]


def with_results(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--results", default="results", help="result store (default: results)")


def with_devices(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--devices-dir", type=Path, action="append",
                    help="extra folder of device files (repeatable)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgebench", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser("run", help="run a suite and print its table")
    sp.add_argument("suite", type=Path)
    sp.add_argument("--resume", action="store_true",
                    help="finish the latest run of this suite instead of starting a new one")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    with_results(sp)
    with_devices(sp)
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("list", help="the cells a suite would run")
    sp.add_argument("suite", type=Path)
    with_devices(sp)
    sp.set_defaults(func=cmd_list)

    sp = sub.add_parser("show", help="terminal leaderboard of a run (default: the latest)")
    sp.add_argument("run", nargs="?", help="run id, id prefix or suite/run_id")
    sp.add_argument("--width", type=int, default=60, help="width of the note column")
    sp.add_argument("--checks", metavar="CELL",
                    help="print one cell's deployment validation table instead")
    with_results(sp)
    sp.set_defaults(func=cmd_show)

    sp = sub.add_parser("results", help="export records as CSV (one row per cell) or JSON lines")
    sp.add_argument("run", nargs="?", help="run id (default: the latest)")
    sp.add_argument("--all", action="store_true", help="every run in the store")
    sp.add_argument("--format", choices=["csv", "json"], default="csv")
    with_results(sp)
    sp.set_defaults(func=cmd_results)

    sp = sub.add_parser("schema", help="JSON Schema of a file format")
    sp.add_argument("kind", choices=["suite"])
    sp.set_defaults(func=cmd_schema)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
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


if __name__ == "__main__":
    sys.exit(main())
