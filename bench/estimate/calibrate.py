"""``edgebench calibrate``: a coefficient table from published results and/or the user's own
records.

From published results (with or without records) the whole :func:`crossval.procedure` runs:
structure chosen by inner cross-validation, intervals calibrated on held-out residuals, fit on
every usable row. From records alone the shipped (or given) table is *refitted*: its posterior
is the prior, each measured board gets its own factor, and its intervals are kept.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench import textable
from bench.estimate import power
from bench.estimate.coefficients import KIND, SCHEMA, Coefficients
from bench.estimate.crossval import fit_data, procedure
from bench.estimate.data import Data, queries
from bench.estimate.fit import PRIORS, predict, to_json

log = logging.getLogger(__name__)

FORMULA = ("log cycles/MAC = c0 + runtime + release[runtime] + core + board + config "
           "- beta*log(simd) + dtype + class + runtime_class (+ release_class); "
           "cycles = sum MACs*cycles/MAC + ops*exp(overhead + overhead.runtime)")


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _systems(data: Data) -> list[dict[str, Any]]:
    rows = data.rows
    out = []
    for group, g in rows.groupby("group", sort=True):
        out.append({"system": group, "core": g["core"].iloc[0],
                    "runtime": g["runtime"].iloc[0], "clock_mhz": float(g["clock_mhz"].iloc[0]),
                    "rows": int(len(g)), "source": g["source"].iloc[0],
                    "releases": sorted({str(s) for s in g["slot"] if isinstance(s, str)})})
    return out


def _power(data: Data, base: Coefficients | None,
           datasheets: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """The table's ``power`` block: boards and cores measured in ``data``, the datasheet spread
    from ``datasheets`` (board key → a device file's ``power`` block) against those boards (a
    refit keeps the base table's and its spreads, and adds or replaces the boards its records
    measured)."""
    block = power.table_block(data.with_power(), datasheets)
    if base is None:
        return block
    kept = base.power
    return {"boards": {**kept["boards"], **block["boards"]}, "cores": kept["cores"],
            "log_sd": kept["log_sd"]}


def calibrate(data: Data, *, sources: dict[str, Any], base: Coefficients | None = None,
              holdout: Data | None = None,
              datasheets: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The coefficient table (a JSON-ready dict) fitted on ``data``.

    Without ``base``: the full procedure (structure, intervals, fit; ``holdout`` rows join
    the new-model interval, never the fit). With ``base``: a refit of that table on ``data``
    (the user's records), keeping its structure and intervals. ``sources`` describes the
    inputs (files and hashes) for the table's ``data`` field. ``datasheets`` (board key → a
    device file's ``power`` block with a datasheet ``active_mw``) size the ``datasheet`` power
    spread against the boards ``data`` measured.
    """
    if data.rows.empty:
        raise ValueError("no usable rows to fit (see the skipped rows)")
    if base is not None and holdout is not None:
        raise ValueError("holdout records calibrate the intervals of a full fit (--results); "
                         "a refit keeps its table's intervals")
    if base is None:
        proc = procedure(data, holdout=holdout)
        fitted, intervals = proc.fitted, proc.intervals
        evaluation = {"structure": proc.structure.to_json(), "inner_scores": proc.scores}
    else:
        fitted = fit_data(data, base.fitted.structure, base.fitted)
        intervals = base.intervals
        evaluation = {"structure": fitted.structure.to_json(), "refit_of": base.source,
                      "intervals": f"kept from {base.source}"}

    pred = predict(fitted, queries(data, fitted.slots))
    ape = np.abs(np.exp(pred.log_ms) / data.rows["latency_ms"].to_numpy() - 1) * 100
    log.info("calibrated on %d rows (%d skipped)", len(data.rows), sum(data.skipped.values()))
    digest = hashlib.sha256(repr(sorted(sources.items())).encode())
    power_block = _power(data, base, datasheets)
    systems = _systems(data)
    if base is not None:
        systems = base.meta.get("systems", []) + systems
    return {
        "schema": SCHEMA, "kind": KIND,
        "fitted": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": {**sources, "sha256": digest.hexdigest(), "rows_used": int(len(data.rows)),
                 "rows_skipped": data.skipped},
        "formula": FORMULA,
        "priors": {k: list(v) for k, v in PRIORS.items()},
        **to_json(fitted),
        "intervals": {k: v.to_json() for k, v in intervals.items()},
        "evaluation": evaluation,
        "power": power_block,
        # the fields older readers know: a core's typical power and its spread
        "power_mw_per_mhz": power_block["cores"],
        "power_log_sd": power_block["log_sd"]["typical"],
        "in_sample": {"median_ape": round(float(np.median(ape)), 2),
                      "p90_ape": round(float(np.quantile(ape, 0.9)), 2)},
        "systems": systems,
    }


def model_sources(models: dict[str, Path], data: Data) -> dict[str, Any]:
    """The ``models`` part of a table's ``data``: each used model's file, hash and MACs."""
    used = set(data.rows["benchmark"])
    return {b: {"file": Path(p).name, "sha256": _sha256(p),
                "macs": int(data.workloads[b].mac_count)}
            for b, p in sorted(models.items()) if b in used}


def render_summary(table: dict[str, Any], out: Path) -> str:
    """What ``edgebench calibrate --out`` prints."""
    d = table["data"]
    lines = [f"wrote {out}: {len(table['parameters'])} coefficients from {d['rows_used']} rows, "
             f"{len(table['systems'])} systems; in-sample median error "
             f"{table['in_sample']['median_ape']} %"]
    ev = table["evaluation"]
    if "inner_scores" in ev:
        lines.append("structure chosen by inner cross-validation (mean |log error|):")
        lines += [f"  {v:.4f}  {k}" for k, v in ev["inner_scores"].items()]
    for kind, iv in table["intervals"].items():
        lines.append(f"80 % interval, {kind}: z {iv['z_low']:+.2f} … {iv['z_high']:+.2f} "
                     f"({iv['source']})")
    rel = [[rt, ", ".join(s["release"] or f"as of {s['round']}" for s in slots)]
           for rt, slots in table["releases"].items()]
    if rel:
        lines += ["releases fitted:", textable.render(None, rel)]
    skipped = d["rows_skipped"]
    if skipped:
        lines.append(f"skipped {sum(skipped.values())} rows:")
        lines += [f"  {n:4d}  {reason}" for reason, n in skipped.items()]
    return "\n".join(lines)
