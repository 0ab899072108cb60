"""``edgebench run | list | show | results | schema``: run a suite, and read its runs back."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.cli.args import add_devices_dir, add_quiet, add_results
from bench.errors import hint

if TYPE_CHECKING:
    from bench.results.store import Run


def cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from bench.results import table
    from bench.results.store import Store
    from bench.run.session import Session
    from bench.suite.spec import load_suite

    suite = load_suite(args.suite)
    with tqdm(unit="cell", file=sys.stderr, disable=args.quiet or None) as bar:
        status = {"failed": 0, "running": ""}

        def show() -> None:
            bar.set_postfix_str(f"failed {status['failed']}{status['running']}")

        def running(nodes: dict[str, int]) -> None:
            status["running"] = (" · running " + ", ".join(
                f"{n} {k}" for n, k in sorted(nodes.items()))) if nodes else ""
            show()

        def progress(record):  # noqa: ANN001 - a Record
            status["failed"] += record.status == "failed"
            bar.update(1)
            show()

        executor = _executor(args, running)
        store = Store(Path(args.results), root_given=args.results_given)
        session = Session(suite, store, devices_dirs=args.devices_dir,
                          executor=executor, on_record=progress,
                          allow_mixed_hosts=args.allow_mixed_hosts)
        bar.reset(total=len(session.cells))
        run = session.run(resume=args.resume)
    print(f"run {run.suite}/{run.run_id} → {run.records_path}")
    lines = _lines(run)  # indexes the run for the readers after it
    print(table.render_lines(lines))
    if suite.report:
        print(table.render_report(run.records(), [t.model_dump(mode="json")
                                                  for t in suite.report],
                                  suite.settings.reference_variant))
    return 1 if any(table.line_verdict(x).failure for x in lines) else 0


def _lines(run: Run) -> list[Any]:
    """The terminal table's view of a run's records: from its index, else read line by line."""
    from bench.results import index, table

    found = index.open_run(run)
    return found.lines() if found is not None else [table.line(r) for r in run.records()]


def _find_record(run: Run, cell_id: str, *, last: bool = False) -> Any:
    """A cell's full record (the first with that id, or the last), or None."""
    from bench.results import index

    found = index.open_run(run)
    if found is not None:
        return found.find(cell_id, last=last)
    matches = [r for r in run.records() if r.cell_id == cell_id]
    return (matches[-1] if last else matches[0]) if matches else None


def _executor(args: argparse.Namespace, on_running: Callable[[dict[str, int]], None]) -> Any:
    """The ``--executor`` named, configured with ``--address`` and a progress callback when it
    takes options (an executor with ``configured(**options)``)."""
    from bench import registry

    executor = registry.executors.get(args.executor)
    configure = getattr(executor, "configured", None)
    if configure is None:
        if args.address:
            raise LookupError(f"--address: the {args.executor!r} executor runs on this machine "
                              "only (use --executor ray)")
        return executor
    return configure(on_running=None if args.quiet else on_running,
                     **({"address": args.address} if args.address else {}))


def cmd_list(args: argparse.Namespace) -> int:
    from bench.run.session import cells_to_run, resolve_devices
    from bench.suite.spec import load_suite

    suite = load_suite(args.suite)
    resolve_devices(suite, args.devices_dir)
    for cell in cells_to_run(suite):
        print(cell.id)
    return 0


def _run_or_latest(args: argparse.Namespace) -> Run:
    from bench.results.store import Store

    store = Store(Path(args.results))
    run = store.find(args.run) if args.run else store.latest()
    if run is None:
        raise LookupError(f"no runs under {store.root}; start one with `edgebench run SUITE`")
    return run


def cmd_show(args: argparse.Namespace) -> int:
    from bench.results import table

    run = _run_or_latest(args)
    if args.checks:
        from bench.suite.constraints import render_validation

        chosen = _find_record(run, args.checks)
        if chosen is None:
            raise LookupError(f"no cell {args.checks!r} in run {run.suite}/{run.run_id}")
        print(render_validation(chosen))
        return 0
    if args.layers:
        from bench.results import agreement, layers

        chosen = _find_record(run, args.layers, last=True)
        if chosen is None:
            raise LookupError(f"no cell {args.layers!r} in run {run.suite}/{run.run_id}"
                              f"{hint(args.layers, [x.cell_id for x in _lines(run)])}")
        print(layers.render(chosen.cell_id, chosen.details or {}, chosen.status))
        if (chosen.details or {}).get("agreement"):  # runners that compare layers (qemu)
            print()
            print(agreement.render(chosen.cell_id, chosen.details or {}))
        return 0
    print(f"{run.suite}/{run.run_id}")
    print(table.render_lines(_lines(run), width=args.width))
    manifest = run.manifest()
    if manifest.get("report"):
        print(table.render_report(run.records(), manifest["report"],
                                  manifest.get("reference_variant", "fp32")))
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    from bench.results import index
    from bench.results.store import Store

    store = Store(Path(args.results))
    if args.raw:
        return _print_raw(_run_or_latest(args), args.raw, args.format)
    runs = [_run_or_latest(args)] if args.run or not args.all else store.runs()
    if args.format == "json":  # one record in memory at a time
        for run in runs:
            found = index.open_run(run)
            for r in found.full_records() if found is not None else run.records():
                print(json.dumps(r.to_json(), ensure_ascii=False, default=str))
    else:
        index.write_csv(runs, sys.stdout)
    return 0


def _print_raw(run: Run, cell_id: str, fmt: str) -> int:
    """A cell's raw timings: CSV ``process,index,ns`` or the stored JSON."""
    from bench.results import samples

    record = _find_record(run, cell_id, last=True)
    if record is None:
        raise LookupError(f"no cell {cell_id!r} in run {run.suite}/{run.run_id}"
                          f"{hint(cell_id, [x.cell_id for x in _lines(run)])}")
    relative = (record.details or {}).get("samples")
    if not isinstance(relative, str):
        raise LookupError(f"{cell_id} kept no raw timings (a cell without latency, or a record "
                          "from before raw samples were kept)")
    kept = samples.load(run.path, relative)
    if fmt == "json":
        print(json.dumps(kept.to_json()))
        return 0
    print("process,index,ns")
    for p, values in enumerate(kept.processes):
        for i, ns in enumerate(values):
            print(f"{p},{i},{int(ns)}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from bench.suite.spec import suite_schema

    print(json.dumps(suite_schema(), indent=2))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``run``, ``list``, ``show``, ``results`` and ``schema`` to the CLI."""
    sp = sub.add_parser("run", help="run a suite and print its table")
    sp.add_argument("suite", type=Path)
    sp.add_argument("--resume", action="store_true",
                    help="finish the latest run of this suite instead of starting a new one")
    sp.add_argument("--allow-mixed-hosts", action="store_true",
                    help="with --resume: resume a run started on another machine (the new "
                         "records say so)")
    sp.add_argument("--executor", default="local", metavar="NAME",
                    help="where cells run: a registered executor (default: local, this "
                         "machine; ray: Ray tasks, here or on a cluster)")
    sp.add_argument("--address", metavar="HOST:PORT",
                    help="with --executor ray: the head node of a running Ray cluster "
                         "(default: start Ray on this machine for the run)")
    add_quiet(sp)
    add_results(sp)
    add_devices_dir(sp)
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("list", help="the cells a suite would run")
    sp.add_argument("suite", type=Path)
    add_devices_dir(sp)
    sp.set_defaults(func=cmd_list)

    sp = sub.add_parser("show", help="terminal leaderboard of a run (default: the latest)")
    sp.add_argument("run", nargs="?", help="run id, id prefix or suite/run_id")
    sp.add_argument("--width", type=int, default=60, help="width of the note column")
    sp.add_argument("--checks", metavar="CELL",
                    help="print one cell's deployment validation table instead")
    sp.add_argument("--layers", metavar="CELL",
                    help="print one cell's per-layer profile instead (op, shapes, MACs, "
                         "instructions or time, share), and where its outputs start to differ "
                         "from LiteRT's when its runner compared layers")
    add_results(sp)
    sp.set_defaults(func=cmd_show)

    sp = sub.add_parser("results", help="export records as CSV (one row per cell) or JSON lines")
    sp.add_argument("run", nargs="?", help="run id (default: the latest)")
    sp.add_argument("--all", action="store_true", help="every run in the store")
    sp.add_argument("--format", choices=["csv", "json"], default="csv")
    sp.add_argument("--raw", metavar="CELL",
                    help="print one cell's raw timings instead (per process, in ns)")
    add_results(sp)
    sp.set_defaults(func=cmd_results)

    sp = sub.add_parser("schema", help="JSON Schema of a file format")
    sp.add_argument("kind", choices=["suite"])
    sp.set_defaults(func=cmd_schema)
