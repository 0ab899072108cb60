"""Report rows that summarise several cells: mean ± standard deviation of each column.

A report table with ``aggregate: true`` prints one line per row rule and device instead of one
per cell — e.g. a model trained at five seeds (``model: "student_s*"``) as ``0.842 ± 0.021``.
The standard deviation is the sample one (n − 1); a single cell shows its value alone. Only
``ok`` cells are averaged; the status column counts every cell the rule matched.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable

from bench.results.formatting import NS_PER, duration_unit, kilobytes, significant
from bench.results.record import Record

#: Columns that are a ratio against the reference variant, and the metric they divide.
RATIO_COLUMNS = {"size_reduction": "model_size", "gzip_reduction": "model_size_gzip"}


def column_value(r: Record, column: str, ref: Record | None) -> float | None:
    """The number behind one report cell (None when the record has none); ``checks`` → 1.0 when
    every constraint that applied passed, 0.0 when one failed."""
    if column == "checks":
        results = [c.passed for c in r.constraints.values() if c.passed is not None]
        return float(all(results)) if results else None
    if column in RATIO_COLUMNS:
        name = RATIO_COLUMNS[column]
        if ref is None or name not in r.metrics or name not in ref.metrics:
            return None
        return ref.metrics[name].value / r.metrics[name].value
    m = r.metrics.get(column)
    return None if m is None else m.value


def summary(values: list[float], column: str, unit: str) -> str:
    """``mean ± std`` of ``values`` in a column's format (sizes in KB, durations in the unit that
    suits the mean, deltas signed, ratios ×, checks as the share of cells passing)."""
    if not values:
        return ""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else None
    if column == "checks":
        return f"{sum(values):.0f}/{len(values)} pass"
    scale, suffix = 1.0, f" {unit}" if unit else ""
    write: Callable[[float], str] = lambda v: significant(v, 4)
    spread: Callable[[float], str] = lambda v: significant(v, 2)
    if column.endswith("_delta"):
        write, spread = "{:+.4f}".format, "{:.4f}".format
    elif column in RATIO_COLUMNS:
        write, suffix = "{:.2f}".format, "×"
    elif unit == "B":
        scale, write, suffix = 1 / 1024, kilobytes, " KB"
    elif unit in NS_PER and mean != 0:  # a duration in the unit that suits it: 412 ns ± 30
        best = duration_unit(mean, unit)
        scale, suffix = NS_PER[unit] / NS_PER[best], f" {best}"
    elif mean == int(mean) and abs(mean) >= 1000:  # counts in full: 13,708, not 1.371e+04
        write = "{:,.0f}".format
    text = write(mean * scale)
    if std is not None:
        text += f" ± {spread(std * scale)}"
    return text + suffix


def aggregate_row(label: str, cells: list[Record], columns: list[str],
                  reference: Callable[[Record], Record | None]) -> list[str]:
    """One report line: ``label``, the status counts, then each column's summary over the ok
    cells (``reference(r)`` is a cell's reference-variant record, for ratio columns)."""
    counts = Counter(r.status for r in cells)
    status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    ok = [r for r in cells if r.status == "ok"]
    out = [label, status]
    for column in columns:
        values = [v for r in ok if (v := column_value(r, column, reference(r))) is not None]
        unit = next((r.metrics[column].unit for r in ok if column in r.metrics), "")
        out.append(summary(values, column, unit))
    return out
