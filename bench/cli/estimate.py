"""``edgebench inspect | estimate | calibrate``: thin layers over :mod:`bench.estimate`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench import textable
from bench.cli.args import add_devices_dir, read_device

BENCHMARKS = ("kws", "vww", "ic", "ad")  # as bench.estimate.calibrate.BENCHMARKS


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def cmd_inspect(args: argparse.Namespace) -> int:
    from bench.estimate.analysis import analyse, render_table

    try:
        analysis = analyse(Path(args.model).read_bytes(), str(args.model))
    except ValueError as e:
        return _fail(str(e))
    if args.format == "json":
        print(json.dumps(analysis.to_json(), indent=2))
    else:
        print(render_table(analysis))
    return 0


def _arena(args: argparse.Namespace) -> tuple[int | None, str]:
    if args.arena_bytes is not None:
        return args.arena_bytes, "given (--arena-bytes)"
    if not args.measure_arena:
        return None, ""
    from bench import worker

    try:
        used = worker.call("bench.estimate.model:measure_arena", {"path": str(args.model)},
                           args.timeout)
    except worker.WorkerError as e:
        print(f"warning: TFLite Micro could not measure the arena ({e}); using the "
              f"activation-based estimate", file=sys.stderr)
        return None, ""
    return int(used), "tflm (recorded arena of the TFLite Micro interpreter)"


def _result_table(result: dict[str, Any]) -> str:
    def fmt(value: Any, unit: str = "") -> str:
        if value is None:
            return "–"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, float):
            return (f"{value:,.0f} {unit}" if abs(value) >= 1000 else f"{value:.4g} {unit}").strip()
        return f"{value:,} {unit}".strip() if isinstance(value, int) else str(value)

    c = result["coefficients"]
    rows = [("model", result["model"]), ("device", result["device"]),
            ("method", result["method"]), ("latency", fmt(result["latency_ms"], "ms")),
            ("energy", fmt(result["energy_uj"], "µJ")), ("MACs", fmt(result["macs"])),
            ("params", fmt(result["params"])),
            ("flash", f"{fmt(result['flash_bytes'], 'B')} (model {result['flash']['model_bytes']:,}"
                      f" + runtime code {result['flash']['runtime_code_bytes']:,})"),
            ("RAM", f"{fmt(result['ram_bytes'], 'B')} (arena {result['ram']['arena_bytes']:,}"
                    f" [{result['ram']['arena_method']}] + runtime "
                    f"{result['ram']['runtime_ram_bytes']:,})"),
            ("fits flash", fmt(result["fits_flash"])), ("fits RAM", fmt(result["fits_ram"])),
            ("coefficients", f"{c['table']} (fitted {c['fitted']}, {c['core']} "
                             f"{'calibrated' if c['core_calibrated'] else 'prior only'}, "
                             f"{c['runtime']} "
                             f"{'calibrated' if c['runtime_calibrated'] else 'prior only'}, "
                             f"round {c['round']})"),
            ("cycles/MAC", ", ".join(f"{k} {v:g}" for by in c["cycles_per_mac"].values()
                                     for k, v in by.items())),
            ("time by class", ", ".join(f"{k} {v:.3g} ms"
                                        for k, v in result["breakdown_ms"].items()))]
    rows += [("warning", w) for w in result["warnings"]]
    return textable.render(None, rows)


def cmd_estimate(args: argparse.Namespace) -> int:
    from bench.estimate.analysis import analyse
    from bench.estimate.model import EstimateError, Target, estimate, load_coefficients

    device = read_device(args.device, args.devices_dir)
    try:
        table = load_coefficients(args.coefficients)
        analysis = analyse(Path(args.model).read_bytes(), str(args.model))
        arena, how = _arena(args)
        result = estimate(analysis, Target.from_device(device), table, arena_bytes=arena,
                          arena_method=how, model_name=str(args.model)).to_json()
    except (EstimateError, ValueError, KeyError) as e:
        return _fail(str(e.args[0]) if e.args else str(e))
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.format == "json"
          else _result_table(result))
    return 0


def _models(pairs: list[str]) -> dict[str, Path]:
    models: dict[str, Path] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or name not in BENCHMARKS:
            raise ValueError(f"--model {pair!r}: expected NAME=PATH with NAME one of "
                             f"{', '.join(BENCHMARKS)}")
        if not Path(path).is_file():
            raise FileNotFoundError(f"--model {name}: {path} not found")
        models[name] = Path(path)
    return models


def cmd_calibrate(args: argparse.Namespace) -> int:
    from bench.estimate import calibrate as cal

    if args.out is None and not args.evaluate:
        return _fail("nothing to do: give --out FILE and/or --evaluate")
    if not Path(args.results).is_file():
        raise FileNotFoundError(f"results file {args.results} not found")
    try:
        models = _models(args.model or [])
        if args.out is not None:
            table = cal.calibrate(args.results, models)
            Path(args.out).write_text(json.dumps(table, indent=1, default=str) + "\n")
            skipped = table["data"]["rows_skipped"]
            print(f"wrote {args.out}: {len(table['parameters'])} coefficients from "
                  f"{table['data']['rows_used']} rows, {len(table['systems'])} systems; "
                  f"in-sample median error {table['in_sample']['median_ape']} %")
            print(f"skipped {sum(skipped.values())} rows:")
            for reason, n in skipped.items():
                print(f"  {n:4d}  {reason}")
        if args.evaluate:
            print(cal.render(cal.evaluate(args.results, models)))
    except ValueError as e:
        return _fail(str(e))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``inspect``, ``estimate`` and ``calibrate`` to the ``edgebench`` parser."""
    sp = sub.add_parser("inspect", help="per-operator table of a .tflite model")
    sp.add_argument("model", type=Path)
    sp.add_argument("--format", choices=["table", "json"], default="table")
    sp.set_defaults(func=cmd_inspect)

    sp = sub.add_parser("estimate", help="estimated latency, energy, flash and RAM on a device")
    sp.add_argument("model", type=Path)
    sp.add_argument("--device", required=True, help="device id or path to a device YAML file")
    sp.add_argument("--coefficients", type=Path,
                    help="coefficient table (default: the one shipped in the package)")
    arena = sp.add_mutually_exclusive_group()
    arena.add_argument("--arena-bytes", type=int, help="TFLite Micro arena measured elsewhere")
    arena.add_argument("--measure-arena", action="store_true",
                       help="measure the arena with TFLite Micro (in a subprocess)")
    sp.add_argument("--timeout", type=float, default=300.0, help=argparse.SUPPRESS)
    sp.add_argument("--format", choices=["json", "table"], default="table")
    add_devices_dir(sp)
    sp.set_defaults(func=cmd_estimate)

    sp = sub.add_parser("calibrate", help="fit the estimator's coefficients to published results")
    sp.add_argument("--results", required=True, type=Path, help="MLPerf Tiny results CSV")
    sp.add_argument("--model", action="append", metavar="NAME=PATH",
                    help=f"reference model of each benchmark ({', '.join(BENCHMARKS)})")
    sp.add_argument("--out", type=Path, help="write the coefficient table (JSON) here")
    sp.add_argument("--evaluate", action="store_true",
                    help="print the leave-systems-out and leave-models-out error tables")
    sp.set_defaults(func=cmd_calibrate)
