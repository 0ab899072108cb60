"""``edgebench compare RUN_A RUN_B``: what changed from one run to another, and whether each
timing change is real (significance on raw samples, Holm-corrected over the cells)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench import textable
from bench.cli.args import add_results
from bench.results.formatting import significant


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.results.compare import compare_runs, machines_differ
    from bench.results.store import Store

    store = Store(Path(args.results))
    run_a, run_b = store.find(args.run_a), store.find(args.run_b)
    # the table lists unchanged figures only with --all (and counts none of them)
    changes = compare_runs(run_a, run_b, tolerance=args.tolerance, alpha=args.alpha,
                           unchanged=args.all or args.format == "json")
    if args.format == "json":
        for change in changes:
            print(json.dumps(change.to_json()))
    else:
        rows = []
        for c in changes:
            if args.all or c.verdict not in ("same",):
                rows.append([c.cell_id, c.metric, significant(c.before),
                             significant(c.after), c.unit, c.change_text(),
                             c.interval_text(), c.p_text(), c.verdict])
        print(f"{run_a.suite}/{run_a.run_id} → {run_b.suite}/{run_b.run_id}: "
              f"{sum(c.verdict == 'regression' for c in changes)} regressions, "
              f"{sum(c.verdict == 'improvement' for c in changes)} improvements "
              f"(tolerance {args.tolerance:.0%}, α {args.alpha} Holm-corrected)")
        print(textable.render(["cell", "metric", "before", "after", "unit", "change",
                               "95% interval", "p", "verdict"], rows, numeric={2, 3, 5, 7})
              if rows else "no changes")
    why = machines_differ(run_a, run_b)
    if why:
        print(f"warning: {why}; timing changes may be the machine's", file=sys.stderr)
    regressions = any(c.verdict == "regression" for c in changes)
    return 1 if args.fail_on_regression and regressions else 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``edgebench compare`` to the CLI."""
    sp = sub.add_parser("compare", help="changes from one run to another, with significance")
    sp.add_argument("run_a", help="the baseline run (id, id prefix or suite/run_id)")
    sp.add_argument("run_b", help="the run compared with it")
    sp.add_argument("--tolerance", type=float, default=0.05,
                    help="relative change below which nothing is a regression (default 0.05)")
    sp.add_argument("--alpha", type=float, default=0.05,
                    help="family-wise significance level (Holm) for timings (default 0.05)")
    sp.add_argument("--all", action="store_true", help="also list unchanged figures")
    sp.add_argument("--fail-on-regression", action="store_true",
                    help="exit 1 when a change is a regression")
    sp.add_argument("--format", choices=["table", "json"], default="table")
    add_results(sp)
    sp.set_defaults(func=cmd_compare)
