"""``edgebench inspect | estimate | calibrate``: thin layers over :mod:`bench.estimate`."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import textable, worker
from bench.artifacts.cache import default_root
from bench.board.reference_models import BENCHMARKS, REFERENCE_FILES
from bench.cli.args import add_cache, add_devices_dir, read_device
from bench.estimate.analysis import analyse, render_table
from bench.results.formatting import duration, quantity

if TYPE_CHECKING:
    from bench.estimate.model import Estimate


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def cmd_inspect(args: argparse.Namespace) -> int:

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

    try:
        used = worker.call("bench.runners.tflm:measure_arena_file", {"path": str(args.model)},
                           args.timeout)
    except worker.WorkerError as e:
        print(f"warning: TFLite Micro could not measure the arena ({e}); using the "
              f"activation-based estimate", file=sys.stderr)
        return None, ""
    return int(used), "tflm (recorded arena of the TFLite Micro interpreter)"


def _result_table(est: Estimate) -> str:
    """The estimate as the command's table: its figures as their metrics write themselves."""
    result = est.to_json()

    def fmt(value: Any, unit: str = "") -> str:
        if value is None:
            return "–"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, float):
            return f"{quantity(value)} {unit}".strip()  # bytes in full: they add up below
        return f"{value:,} {unit}".strip() if isinstance(value, int) else str(value)

    c, rel, iv = result["coefficients"], result["release"], result["interval"]
    rows = [("model", result["model"]), ("device", result["device"]),
            ("method", result["method"]),
            ("latency", est.latency.text()),
            ("energy", "–" if est.energy is None else est.energy.text()),
            ("power", _power_line(result["energy"])),
            ("interval", f"{iv['level']:.0%} ({iv['kind'].replace('_', ' ')}: "
                         f"{iv['calibrated_on']})"),
            ("runtime release", f"{rel['source']}"
                                + (f": {', '.join(rel['releases'])}" if rel["releases"] else "")
                                + (f" (stated {rel['stated']})" if rel["stated"] else "")),
            ("MACs", fmt(result["macs"])), ("params", fmt(result["params"])),
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
                             f"board {c['board']} "
                             f"{'calibrated' if c['board_calibrated'] else 'not in the data'})"),
            *_unit_costs(c["cycles_per_mac"]),
            ("time by class", ", ".join(f"{k} {duration(v, 'ms')}"
                                        for k, v in result["breakdown_ms"].items()))]
    rows += [("warning", w) for w in result["warnings"]]
    return textable.render(None, rows)


def _power_line(energy: dict[str, Any]) -> str:
    """Where the energy's power comes from: mW, source and its spread."""
    if energy.get("source") is None:
        return "– (no power figure: state power.active_mw in the device file)"
    at = f" at {energy['at_mhz']:g} MHz" if energy.get("at_mhz") else ""
    return (f"{quantity(energy['power_mw'], 'mW')} ({energy['source']}: {energy['from']}{at}; "
            f"×/÷ {math.exp(energy['power_log_sd']):.2f})")


def _unit_costs(per_dtype: dict[str, dict[str, float]]) -> list[tuple[str, str]]:
    """The JSON's ``cycles_per_mac`` as one line per unit: MAC, output, gathered element
    (``out_conv`` is listed as ``conv`` under ``cycles/output``)."""
    from bench.estimate.design import SHAPE_UNITS

    lines: dict[str, list[str]] = {"cycles/MAC": []}
    for by_class in per_dtype.values():
        for k, v in by_class.items():
            unit = SHAPE_UNITS.get(k)
            name = k.split("_", 1)[1] if unit else k
            lines.setdefault(f"cycles/{unit or 'MAC'}", []).append(f"{name} {v:g}")
    return [(label, ", ".join(items)) for label, items in lines.items() if items]


def _table_path(args: argparse.Namespace, device: Any) -> Path | None:
    """``--coefficients``, else the device file's ``estimate.coefficients``, else None."""
    if args.coefficients is not None:
        return args.coefficients
    settings = getattr(device, "estimate", None)
    return None if settings is None else settings.coefficients


def cmd_estimate(args: argparse.Namespace) -> int:
    from bench.estimate.model import EstimateError, Target, estimate, load_coefficients

    device = read_device(args.device, args.devices_dir)
    try:
        table = load_coefficients(_table_path(args, device))
        analysis = analyse(Path(args.model).read_bytes(), str(args.model))
        arena, how = _arena(args)
        result = estimate(analysis, Target.from_device(device), table, arena_bytes=arena,
                          arena_method=how, model_name=str(args.model))
    except (EstimateError, ValueError, KeyError) as e:
        return _fail(str(e.args[0]) if e.args else str(e))
    print(json.dumps(result.to_json(), indent=2, ensure_ascii=False) if args.format == "json"
          else _result_table(result))
    return 0


def _models(pairs: list[str], models_dir: Path | None) -> dict[str, Path]:
    """``NAME=PATH`` pairs, after the reference models found in ``models_dir``."""

    models: dict[str, Path] = {}
    if models_dir is not None:
        if not models_dir.is_dir():
            raise FileNotFoundError(f"--models-dir {models_dir} is not a folder")
        models = {b: models_dir / f for b, f in REFERENCE_FILES.items()
                  if (models_dir / f).is_file()}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--model {pair!r}: expected NAME=PATH, NAME a benchmark of the "
                             f"results ({', '.join(BENCHMARKS)}, …)")
        if not Path(path).is_file():
            raise FileNotFoundError(f"--model {name}: {path} not found")
        models[name] = Path(path)
    return models


def _records(args: argparse.Namespace, paths: list[Path]) -> Any:
    """The calibration rows of the records under ``paths`` (devices and artifacts as the
    arguments say)."""
    from bench.devices.device import search_dirs
    from bench.estimate.records import records_data

    cache = args.cache or default_root()
    return records_data(paths, search_dirs(args.devices_dir),
                        [cache / "artifacts", *(args.artifacts or [])])


def _skipped(data: Any) -> str:
    return "; ".join(f"{n} {why}" for why, n in data.skipped.items()) or "none"


def _data(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The calibration rows the arguments name, and the description of their sources."""
    from bench.estimate.calibrate import model_sources
    from bench.estimate.data import Data, results_data
    from bench.estimate.records import record_files

    parts: list[Data] = []
    sources: dict[str, Any] = {}
    if args.results:
        for path in args.results:
            if not Path(path).is_file():
                raise FileNotFoundError(f"results file {path} not found")
        models = _models(args.model or [], args.models_dir)
        data = results_data(list(args.results), models)
        parts.append(data)
        sources.update({"results": {Path(p).name: hashlib.sha256(Path(p).read_bytes())
                                    .hexdigest() for p in args.results},
                        "models": model_sources(models, data)})
    if args.records:
        parts.append(_records(args, args.records))
        sources["records"] = [str(f) for f in record_files(args.records)]
    data = parts[0]
    for more in parts[1:]:
        data = data + more
    return data, sources


def _holdout(args: argparse.Namespace, sources: dict[str, Any]) -> Any:
    """The ``--holdout-records`` rows (None without any), described in ``sources``."""
    if not args.holdout_records:
        return None
    from bench.estimate.records import record_files

    holdout = _records(args, args.holdout_records)
    if holdout.rows.empty:
        raise ValueError(f"--holdout-records: no usable rows (skipped: {_skipped(holdout)})")
    sources["holdout_records"] = {str(f): hashlib.sha256(f.read_bytes()).hexdigest()
                                  for f in record_files(args.holdout_records)}
    return holdout


def cmd_calibrate(args: argparse.Namespace) -> int:
    from bench.estimate.calibrate import calibrate, render_summary
    from bench.estimate.evaluate import device_datasheets, evaluate, render, render_systems
    from bench.estimate.model import EstimateError, load_coefficients

    if args.out is None and not args.evaluate:
        return _fail("nothing to do: give --out FILE and/or --evaluate")
    if not args.results and not args.records:
        return _fail("no data: give --results CSV and/or --records RUN_OR_DIR")
    try:
        data, sources = _data(args)
        if data.rows.empty:
            return _fail(f"no usable rows (skipped: {_skipped(data)})")
        holdout = _holdout(args, sources)
        if args.out is not None:
            base = None if args.results else load_coefficients(args.coefficients)
            sheets = device_datasheets(args.devices_dir) if base is None else None
            table = calibrate(data, sources=sources, base=base, holdout=holdout,
                              datasheets=sheets)
            Path(args.out).write_text(json.dumps(table, indent=1, default=str) + "\n")
            print(render_summary(table, args.out))
        if args.evaluate:
            report = evaluate(data, nested=not args.quick, holdout=holdout,
                              datasheets=device_datasheets(args.devices_dir))
            print(render(report))
            print("\nLeave whole systems out, by system:\n")
            print(render_systems(report))
    except (ValueError, EstimateError) as e:
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
                    help="coefficient table (default: the device file's estimate.coefficients, "
                         "else the one shipped in the package)")
    arena = sp.add_mutually_exclusive_group()
    arena.add_argument("--arena-bytes", type=int, help="TFLite Micro arena measured elsewhere")
    arena.add_argument("--measure-arena", action="store_true",
                       help="measure the arena with TFLite Micro (in a subprocess)")
    sp.add_argument("--timeout", type=float, default=300.0, help=argparse.SUPPRESS)
    sp.add_argument("--format", choices=["json", "table"], default="table")
    add_devices_dir(sp)
    sp.set_defaults(func=cmd_estimate)

    sp = sub.add_parser("calibrate", help="fit the estimator's coefficients to published "
                                          "results and/or your own records")
    sp.add_argument("--results", type=Path, action="append", metavar="CSV",
                    help="published results in the MLPerf Tiny CSV's columns (repeatable)")
    sp.add_argument("--model", action="append", metavar="NAME=PATH",
                    help=f"the model of a benchmark in the results ({', '.join(BENCHMARKS)}, "
                         f"…); rows of a benchmark without one are skipped")
    sp.add_argument("--models-dir", type=Path,
                    help="folder holding the MLPerf Tiny reference models under their usual "
                         "names (kws_ref_model_int8.tflite, …)")
    sp.add_argument("--records", type=Path, action="append", metavar="RUN_OR_DIR",
                    help="a run folder, a folder of runs or a records.jsonl (repeatable): "
                         "latencies measured on boards (serial) or emulated boards, and "
                         "energy measured on boards (the board's own power)")
    sp.add_argument("--holdout-records", type=Path, action="append", metavar="RUN_OR_DIR",
                    help="records of models never fitted (repeatable): their held-out errors "
                         "join the new-model interval's calibration (with --results)")
    sp.add_argument("--artifacts", type=Path, action="append", metavar="DIR",
                    help="where the records' .tflite files are, besides the cache (repeatable)")
    sp.add_argument("--coefficients", type=Path,
                    help="with --records alone: the table to refit (default: the packaged one)")
    add_cache(sp)
    add_devices_dir(sp)
    sp.add_argument("--out", type=Path, help="write the coefficient table (JSON) here")
    sp.add_argument("--evaluate", action="store_true",
                    help="print the nested leave-systems-out, leave-one-model-out and "
                         "leave-each-release-out error and interval-coverage tables (minutes)")
    sp.add_argument("--quick", action="store_true",
                    help="with --evaluate: skip the nested runs (optimistic figures only)")
    sp.set_defaults(func=cmd_calibrate)
