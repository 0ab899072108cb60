"""Records as tables: a flat pandas frame (one row per cell) and the terminal leaderboard."""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from bench import textable
from bench.results import formatting
from bench.results.aggregate import aggregate_row
from bench.results.expected import Verdict, expectations, summary_of, verdict
from bench.results.metrics import UNITS, Metric
from bench.results.record import Record

if TYPE_CHECKING:
    import pandas as pd

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


#: The columns every row of :func:`frame` has, in order (metrics and checks follow).
ID_COLUMNS = ("suite", "run_id", "cell_id", "model", "variant", "device", "runner", "dataset",
              "status", "outcome", "expected", "expected_checks", "error_kind", "error",
              "artifact_sha256", "warnings")
#: The id columns every record fills (never null).
REQUIRED_IDS = ("suite", "run_id", "cell_id", "model", "variant", "device", "runner", "status",
                "outcome")


def row(r: Record) -> dict[str, Any]:
    """A record as one row of :func:`frame`."""
    v = verdict(r)
    out: dict[str, Any] = {"suite": r.suite, "run_id": r.run_id, "cell_id": r.cell_id,
                           "model": r.model, "variant": r.variant, "device": r.device,
                           "runner": r.runner, "dataset": dataset_label(r.details),
                           "status": r.status, "outcome": v.outcome,
                           "expected": v.reason() or None,
                           "expected_checks": ",".join(sorted(expectations(r.details))) or None,
                           "error_kind": (r.error or {}).get("kind"),
                           "error": (r.error or {}).get("message"),
                           "artifact_sha256": r.artifact_sha256,
                           "warnings": "; ".join(map(str, (r.details or {}).get("warnings")
                                                     or [])) or None}
    for name, m in r.metrics.items():
        out[name], out[f"{name}__unit"], out[f"{name}__method"] = m.value, m.unit, m.method
        if m.low is not None and m.high is not None:  # an estimate's 80 % interval
            out[f"{name}__low"], out[f"{name}__high"] = m.low, m.high
    for name, c in r.constraints.items():
        out[f"check:{name}"] = c.passed
    return out


def frame(records: list[Record]) -> pd.DataFrame:
    """One row per record: ids, ``dataset`` (:func:`dataset_label`), status, the ``outcome``
    (:func:`bench.results.expected.verdict`), the ``expected`` misses' reasons and the checks
    expected to miss (``expected_checks``), error, timing ``warnings``, ``<metric>`` values,
    ``<metric>__unit`` and ``<metric>__method`` columns (an estimate's 80 % interval also in
    ``<metric>__low`` and ``<metric>__high``), and ``check:<name>`` pass/fail columns."""
    import pandas as pd

    return pd.DataFrame([row(r) for r in records])


class Line(NamedTuple):
    """What the terminal table shows of a record: its figures as (value, low, high) by metric
    (the :data:`COLUMNS` ones), its checks in order, its note (in full), whether its timing was
    unstable, its outcome and the checks it is expected to miss."""

    cell_id: str
    status: str
    figures: dict[str, tuple[float, float | None, float | None]]
    checks: list[tuple[str, bool | None]]
    note: str
    unstable: bool
    outcome: str = "ok"
    expected_checks: tuple[str, ...] = ()


#: The metrics the terminal table can show.
SHOWN = tuple(c[1] for c in COLUMNS)


def _checks(r: Record) -> str:
    return _checks_text([(n, c.passed) for n, c in r.constraints.items()],
                        tuple(expectations(r.details)))


def _checks_text(checks: list[tuple[str, bool | None]], expected: tuple[str, ...] = ()) -> str:
    results = [passed for _, passed in checks if passed is not None]
    if not results:
        return ""
    failed = [f"{n} (expected)" if n in expected else n for n, passed in checks
              if passed is False]
    return f"{sum(results)}/{len(results)}" + (f" ✗ {','.join(failed)}" if failed else "")


def note(r: Record) -> str:
    """What a reader needs beside the figures, in full: the error or the runtime's reason for a
    skip, why a miss was expected, or that an expected miss passed; else the first timing
    warning."""
    if r.error is not None:
        return f"{r.error.get('kind')}: {r.error.get('message')}"
    v = verdict(r)
    if v.outcome == "unexpected pass":
        return f"expected to miss {', '.join(v.passed_anyway)}, but passed ({v.reason()})"
    if v.outcome == "expected miss":
        return f"expected: {v.reason()}"
    warnings = (r.details or {}).get("warnings")
    return str(warnings[0]) if warnings else ""


def line(r: Record) -> Line:
    """A record as a :class:`Line`."""
    return Line(r.cell_id, r.status,
                {n: (m.value, m.low, m.high) for n, m in r.metrics.items() if n in SHOWN},
                [(n, c.passed) for n, c in r.constraints.items()], note(r),
                bool((r.details or {}).get("warnings")), verdict(r).outcome,
                tuple(sorted(expectations(r.details))))


def line_verdict(x: Line) -> Verdict:
    """The verdict of a :class:`Line` (its reasons left out): what the summary line needs."""
    missed = [n for n, passed in x.checks if passed is False]
    return Verdict(x.outcome, tuple(n for n in missed if n not in x.expected_checks),
                   tuple(n for n in missed if n in x.expected_checks),
                   tuple(n for n, passed in x.checks if passed is True
                         and n in x.expected_checks))


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
    """Report lines of an ``aggregate`` table (:mod:`bench.results.aggregate`), labelled by the
    rule's model and variant patterns and the device."""
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
    return _figure_text((m.value, m.low, m.high), scale, fmt, m.unit)


def _figure_text(figure: tuple[float, float | None, float | None], scale: float,
                 fmt: Callable[[float], str], unit: str) -> str:
    value, low, high = figure
    if low is None or high is None:
        return fmt(value * scale)
    return formatting.with_interval(value * scale, low * scale, high * scale,
                                    unit if unit in formatting.NS_PER else "")


def render(records: list[Record], width: int = 60) -> str:
    """The terminal leaderboard: one row per cell, key metrics with units, status and why."""
    return render_lines([line(r) for r in records], width)


def render_lines(lines: list[Line], width: int = 60) -> str:
    """:func:`render` of records already reduced to :class:`Line` (from the store's index)."""
    if not lines:
        return "(no records)"
    used = [c for c in COLUMNS if any(c[1] in x.figures for x in lines)]
    header = ["cell", "status", *[c[0] for c in used], "checks", "note"]
    rows = []
    for x in lines:
        cells = [x.cell_id, x.status]
        for _, name, scale, fmt in used:
            figure = x.figures.get(name)
            text = "" if figure is None else _figure_text(figure, scale, fmt,
                                                          UNITS.get(name, ""))
            cells.append(f"{text} {UNSTABLE}" if text and x.unstable and
                         name.startswith("latency") else text)
        note_text = textwrap.shorten(" ".join(x.note.split()), width=width, placeholder="…")
        rows.append([*cells, _checks_text(x.checks, x.expected_checks), note_text])
    numeric = [i for i, h in enumerate(header) if h not in ("cell", "status", "checks", "note")]
    out = [textable.render(header, rows, numeric)]
    counts = sorted(Counter(x.status for x in lines).items(), key=lambda kv: -kv[1])
    out.append("")
    out.append(", ".join(f"{n} {s}" for s, n in counts) + f" — {len(lines)} cells")
    out.append(summary_of([(x.cell_id, line_verdict(x)) for x in lines]))
    unstable = sum(x.unstable for x in lines)
    if unstable:
        out.append(f"{UNSTABLE} {unstable} cells with unstable timing (see the note, or "
                   "details.warnings in their records)")
    return "\n".join(out)
