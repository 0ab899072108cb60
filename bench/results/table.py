"""Records as tables: a flat pandas frame (one row per cell) and the terminal leaderboard."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

import pandas as pd

from bench import textable
from bench.results import formatting
from bench.results.expected import expectations, summary, verdict
from bench.results.metrics import Metric
from bench.results.record import Record
from bench.results.aggregate import aggregate_row

#: Marks a latency whose timing was unstable (the record's ``details.warnings``).
UNSTABLE = "⚠"
#: The terminal table's metric columns: (header, metric, scale, format). A duration column's
#: header has no unit: each figure carries the one that suits it (``812 ns``, ``82.0 ms``).
COLUMNS: list[tuple[str, str, float, Callable[[float], str]]] = [
    ("size KB", "model_size", 1 / 1024, formatting.kilobytes),
    ("arena KB", "arena_used", 1 / 1024, formatting.kilobytes),
    ("min arena KB", "arena_min", 1 / 1024, formatting.kilobytes),
    ("p50", "latency_p50", 1, lambda v: formatting.duration(v, "ms")),
    ("accuracy", "accuracy", 1, "{:.3f}".format),
    ("Δacc", "accuracy_delta", 1, "{:+.3f}".format),
    ("MAE °C", "mae", 1, formatting.significant),
    ("ΔMAE", "mae_delta", 1, formatting.signed),
    ("AUC", "auc", 1, "{:.3f}".format),
    ("F1", "f1", 1, "{:.3f}".format),
]


def dataset_label(details: dict[str, Any] | None) -> str | None:
    """The data set a cell's model was trained and scored on, as one label (``digits``,
    ``har_synthetic (classes=5, features=27)``); None for an untrained model."""
    found = (details or {}).get("dataset")
    if not isinstance(found, dict) or not isinstance(found.get("name"), str):
        return None
    params = found.get("params") if isinstance(found.get("params"), dict) else {}
    shown = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"{found['name']} ({shown})" if shown else found["name"]


def frame(records: list[Record]) -> pd.DataFrame:
    """One row per record: ids, ``dataset`` (:func:`dataset_label`), status, error, the
    ``outcome`` (:func:`bench.results.expected.verdict`) and the ``expected`` misses' reasons,
    timing ``warnings``, ``<metric>`` values,
    ``<metric>__unit`` and ``<metric>__method`` columns (an estimate's 80 % interval also in
    ``<metric>__low`` and ``<metric>__high``), and ``check:<name>`` pass/fail columns."""
    rows: list[dict[str, Any]] = []
    for r in records:
        row: dict[str, Any] = {"suite": r.suite, "run_id": r.run_id, "cell_id": r.cell_id,
                               "model": r.model, "variant": r.variant, "device": r.device,
                               "runner": r.runner, "dataset": dataset_label(r.details),
                               "status": r.status, "outcome": verdict(r).outcome,
                               "expected": verdict(r).reason() or None,
                               "error_kind": (r.error or {}).get("kind"),
                               "error": (r.error or {}).get("message"),
                               "artifact_sha256": r.artifact_sha256,
                               "warnings": "; ".join(map(str, (r.details or {}).get("warnings")
                                                         or [])) or None}
        for name, m in r.metrics.items():
            row[name], row[f"{name}__unit"], row[f"{name}__method"] = m.value, m.unit, m.method
            if m.low is not None and m.high is not None:  # an estimate's 80 % interval
                row[f"{name}__low"], row[f"{name}__high"] = m.low, m.high
        for name, c in r.constraints.items():
            row[f"check:{name}"] = c.passed
        rows.append(row)
    return pd.DataFrame(rows)


def _checks(r: Record) -> str:
    results = [c.passed for c in r.constraints.values() if c.passed is not None]
    if not results:
        return ""
    expected = expectations(r.details)
    failed = [f"{n} (expected)" if n in expected else n
              for n, c in r.constraints.items() if c.passed is False]
    return f"{sum(results)}/{len(results)}" + (f" ✗ {','.join(failed)}" if failed else "")


def note(r: Record) -> str:
    """What a reader needs beside the figures: the error or the runtime's reason for a skip,
    why a miss was expected, or that an expected miss passed."""
    if r.error is not None:
        return f"{r.error['kind']}: {r.error['message']}"
    v = verdict(r)
    if v.outcome == "unexpected pass":
        return f"expected to miss {', '.join(v.passed_anyway)}, but passed ({v.reason()})"
    if v.outcome == "expected miss":
        return f"expected: {v.reason()}"
    return ""


def report_cell(r: Record, column: str, ref: Record | None) -> str:
    """One report cell: a metric with its unit, a ratio against the reference, or checks."""
    if column == "checks":
        return _checks(r)
    if column in ("size_reduction", "gzip_reduction"):
        name = "model_size" if column == "size_reduction" else "model_size_gzip"
        if ref is None or name not in r.metrics or name not in ref.metrics:
            return ""
        return f"{ref.metrics[name].value / r.metrics[name].value:.2f}×"
    m = r.metrics.get(column)
    if m is None:
        return ""
    if column.endswith("_delta"):
        return f"{m.value:+.4f}"
    if m.low is not None and m.high is not None:
        return m.text()  # 82.0 ms (68.3–110)
    return formatting.quantity(m.value, m.unit)


def render_report(records: list[Record], tables: list[dict[str, Any]],
                  reference_variant: str = "fp32") -> str:
    """A suite's report tables (``report:`` in the suite, kept in the run's manifest)."""
    from fnmatch import fnmatchcase

    ok = {(r.model, r.variant, r.device): r for r in records if r.status == "ok"}
    out = []
    for table in tables:
        matched: list[tuple[dict[str, Any], Record]] = []
        for rule in table["rows"]:
            for r in records:
                if (fnmatchcase(r.model, rule.get("model", "*"))
                        and fnmatchcase(r.variant, rule.get("variant", "*"))
                        and fnmatchcase(r.device, table.get("device") or rule.get("device", "*"))
                        and r not in (seen for _, seen in matched)):
                    matched.append((rule, r))
        header = ["cell", "status", *table["columns"]]
        if table.get("aggregate"):  # one line per rule and device: mean ± std over its cells
            rows = _aggregated(matched, table["columns"], ok, reference_variant)
        else:
            rows = [[r.cell_id, r.status,
                     *(report_cell(r, c, ok.get((r.model, reference_variant, r.device)))
                       for c in table["columns"])] for _, r in matched]
        body = textable.render(header, rows, numeric=range(2, len(header)))
        out += ["", table["title"], body if rows else "(no cells)"]
    return "\n".join(out)


def _aggregated(matched: list[tuple[dict[str, Any], Record]], columns: list[str],
                ok: dict[tuple[str, str, str], Record], reference_variant: str
                ) -> list[list[str]]:
    """Report lines of an ``aggregate`` table (:mod:`bench.results.aggregate`), labelled by the rule's
    model and variant patterns and the device."""

    groups: dict[str, list[Record]] = {}
    for rule, r in matched:
        label = f"{rule.get('model', '*')}/{rule.get('variant', '*')}@{r.device}"
        groups.setdefault(label, []).append(r)
    return [aggregate_row(label, cells, columns,
                          lambda r: ok.get((r.model, reference_variant, r.device)))
            for label, cells in groups.items()]


def cell_text(m: Metric, scale: float, fmt: Callable[[float], str]) -> str:
    """A metric in the terminal table: its value, and an estimate's 80 % interval after it
    (``82.0 (68.3–110)``; the unit is in the column's header, or beside a duration)."""
    if m.low is None or m.high is None:
        return fmt(m.value * scale)
    return m.text(scale, unit=m.unit if m.unit in formatting.NS_PER else "")


def render(records: list[Record], width: int = 60) -> str:
    """The terminal leaderboard: one row per cell, key metrics with units, status and why."""
    if not records:
        return "(no records)"
    used = [c for c in COLUMNS if any(c[1] in r.metrics for r in records)]
    header = ["cell", "status", *[c[0] for c in used], "checks", "note"]
    rows = []
    for r in records:
        cells = [r.cell_id, r.status]
        warnings = (r.details or {}).get("warnings") or []
        for _, name, scale, fmt in used:
            m = r.metrics.get(name)
            text = "" if m is None else cell_text(m, scale, fmt)
            cells.append(f"{text} {UNSTABLE}" if text and warnings and
                         name.startswith("latency") else text)
        text = note(r)
        if not text and warnings:
            text = str(warnings[0])
        text = textwrap.shorten(" ".join(text.split()), width=width, placeholder="…")
        rows.append([*cells, _checks(r), text])
    numeric = [i for i, h in enumerate(header) if h not in ("cell", "status", "checks", "note")]
    out = [textable.render(header, rows, numeric)]
    counts = pd.Series([r.status for r in records]).value_counts()
    out.append("")
    out.append(", ".join(f"{n} {s}" for s, n in counts.items()) + f" — {len(records)} cells")
    out.append(summary(records))
    unstable = sum(bool((r.details or {}).get("warnings")) for r in records)
    if unstable:
        out.append(f"{UNSTABLE} {unstable} cells with unstable timing (see the note, or "
                   "details.warnings in their records)")
    return "\n".join(out)
