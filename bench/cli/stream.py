"""``edgebench stream SUITE --cell MODEL/VARIANT@DEVICE`` — replay a test stream through a cell."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.artifacts.cache import Cache, write_atomic
from bench.cli.args import add_cache, add_results
from bench.results.formatting import duration, quantity, significant
from bench.worker import WorkerError, call

#: Record metrics echoed beside the replay's own figures (same artifact, same rules).
RECORD_METRICS = ("latency_p50", "latency_p99", "threshold", "precision", "recall", "f1", "auc",
                  "mae", "accuracy")


def _format(summary: dict[str, Any]) -> str:
    lat, m = summary["latency_ms"], summary["metrics"]
    lines = [
        f"{summary['cell']} ({summary['run']}): {summary['windows']} test windows, "
        f"one invoke each, sample period {summary['period_s']:g} s",
        "  latency: " + "  ".join(f"{p} {duration(lat[p], 'ms')}"
                                  for p in ("p50", "p90", "p99", "max")),
        f"  real-time factor (p99 / period): {significant(summary['real_time_factor'], 3)}  "
        f"(max {significant(summary['real_time_factor_max'], 3)}); deadline misses: "
        f"{summary['deadline_misses']}",
        "  highest sustainable sample rate (1 / p99): "
        f"{quantity(summary['max_rate_hz'], 'Hz')}",
    ]
    rec = summary["record_metrics"]
    if summary["task"] == "anomaly":
        same = ("= the record's" if m["threshold"] == rec.get("threshold")
                else f"record: {rec.get('threshold')}")
        lines += [
            f"  threshold {m['threshold']:.6g} (max F1 on the validation split; {same})",
            f"  alerts {m['alerts']} ({m['true_alerts']} true, {m['false_alerts']} false) of "
            f"{m['anomalous_windows']} anomalous windows; precision {m['precision']:.3f}  "
            f"recall {m['recall']:.3f}  F1 {m['f1']:.3f}",
            f"  injected anomalies detected: {m['events_detected']}/{m['events']}",
        ]
    elif summary["task"] == "regression":
        lines.append(f"  MAE over the stream {m['mae']:.4f} (record: {rec.get('mae')})")
    else:
        lines.append(f"  accuracy over the stream {m['accuracy']:.4f} "
                     f"(record: {rec.get('accuracy')})")
    lines += [f"wrote {summary['plot']}", f"wrote {summary['summary']}"]
    return "\n".join(lines)


def cmd_stream(args: argparse.Namespace) -> int:
    from bench.results.store import Store
    from bench.run.stream import locate, safe_name
    from bench.runners.replay import DEFAULT_PERIOD_S
    from bench.suite.spec import load_suite

    period = DEFAULT_PERIOD_S if args.sample_period_s is None else args.sample_period_s
    if not period > 0:
        print(f"error: --sample-period-s must be positive (got {period:g})", file=sys.stderr)
        return 2
    suite = load_suite(args.suite)
    try:
        src = locate(suite, args.cell, Store(Path(args.results)), Cache(args.cache))
    except (LookupError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out if args.out is not None else src.run.path
    stem = f"stream-{safe_name(args.cell)}"
    png, summary_path = out / f"{stem}.png", out / f"{stem}.json"
    record = src.record
    options = ((record.details or {}).get("options") or {}) if record.runner == "litert" else {}
    title = f"{record.cell_id} — {suite.name}/{src.run.run_id}"
    try:
        figures = call("bench.run.stream:replay_files",
                       {"artifact": str(src.artifact), "dataset": str(src.dataset),
                        "period_s": period, "png": str(png), "title": title,
                        "options": options},
                       suite.settings.timeout_s)
    except WorkerError as e:
        print(f"error: replay of {record.cell_id} failed ({e.kind}): {e}", file=sys.stderr)
        return 1
    summary = {
        "cell": record.cell_id, "suite": suite.name, "run": f"{src.run.suite}/{src.run.run_id}",
        "artifact_sha256": record.artifact_sha256, "artifact": str(src.artifact),
        "dataset": (record.details or {}).get("dataset"), "split": "test",
        "runtime": "litert", **figures,
        "note": None if record.runner == "litert" else
        f"replayed through LiteRT on this host, not the cell's {record.runner} runner",
        "record_metrics": {k: v for k in RECORD_METRICS if (v := record.value(k)) is not None},
        "plot": str(png), "summary": str(summary_path),
    }
    write_atomic(summary_path, json.dumps(summary, indent=1, default=str).encode())
    print(_format(summary))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``edgebench stream`` to the CLI."""
    sp = sub.add_parser("stream", help="replay a cell's test stream window by window: latency "
                                       "vs the sample period, alerts, a PNG plot")
    sp.add_argument("suite", type=Path, help="the suite file (its latest run is used)")
    sp.add_argument("--cell", required=True, metavar="MODEL/VARIANT@DEVICE",
                    help="an ok cell of that run")
    add_results(sp)
    sp.add_argument("--out", type=Path, default=None,
                    help="folder for stream-<cell>.png and .json (default: the run folder)")
    sp.add_argument("--sample-period-s", type=float, default=None, metavar="S",
                    help="seconds between readings (default: 60, a reading a minute)")
    add_cache(sp)
    sp.set_defaults(func=cmd_stream)
