"""Compare two runs cell by cell: for each metric the change, and for timings its 95 % interval
and whether it is significant (raw samples where both runs kept them, else the stored summaries;
Holm-corrected over the cells). A timing change inside the noise is never a regression."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from bench.results import index
from bench.results import samples as raw
from bench.results.formatting import signed
from bench.results.host import identity
from bench.results.metrics import TASK_METRICS, higher_is_better
from bench.results.record import Record
from bench.results.significance import ALPHA, Test, holm, on_samples, on_summaries
from bench.results.store import Run

log = logging.getLogger(__name__)

TIMED = "latency_p50"
#: Deterministic figures compared exactly (same artifact, same data: no noise).
EXACT = ("model_size", "arena_used", *(m for task in TASK_METRICS.values() for m in task))
TOLERANCE = 0.05
#: Metrics whose change is relative (after ÷ before − 1); the others' is a difference.
RELATIVE = ("model_size", "arena_used", TIMED)


@dataclass(frozen=True)
class Change:
    cell_id: str
    metric: str
    before: float
    after: float
    unit: str
    change: float  # after ÷ before − 1 (timing, sizes) or after − before (task metrics)
    low: float | None = None  # 95 % interval of ``change`` (timings)
    high: float | None = None
    p_value: float | None = None
    test: str = "exact"
    significant: bool | None = None
    verdict: str = ""  # regression | improvement | within noise | within tolerance | same

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def change_text(self) -> str:
        """``+3.2%`` for a relative change, ``-0.004`` for a difference."""
        return f"{self.change:+.1%}" if self.metric in RELATIVE else signed(self.change)

    def interval_text(self) -> str:
        return "" if self.low is None or self.high is None else (
            f"{self.low:+.1%} … {self.high:+.1%}")

    def p_text(self) -> str:
        return "" if self.p_value is None else f"{self.p_value:.2g}"


#: The figures comparing runs reads (with the timing summaries the test falls back on).
COMPARED = (*EXACT, TIMED, "latency_mean", "latency_std", "latency_n")
#: Where each of :data:`COMPARED`'s value sits in a :data:`Row` (its unit follows it).
AT = {name: 2 + 2 * i for i, name in enumerate(COMPARED)}
#: A record as comparing reads it: cell id, raw-samples path (None: none), then the value
#: and unit of each of :data:`COMPARED` (None, None where the record lacks it).
Row = tuple[Any, ...]


def _row(record: Record) -> Row:
    samples = (record.details or {}).get("samples")
    out: list[Any] = [record.cell_id, samples if isinstance(samples, str) else None]
    for name in COMPARED:
        m = record.metrics.get(name)
        out += (None, None) if m is None else (m.value, m.unit)
    return tuple(out)


def _rows(run: Run) -> dict[str, Row]:
    """A run's ok cells by id (a cell recorded twice: its last record, in its first's place),
    from its index, else read line by line."""
    found = index.open_run(run)
    rows = (found.figure_rows(COMPARED) if found is not None else
            (_row(r) for r in run.records() if r.status == "ok"))
    return {row[0]: row for row in rows}


def _samples(run: Run, relative: str | None) -> raw.Samples | None:
    if relative is None:
        return None
    try:
        return raw.load(run.path, relative)
    except ValueError as e:
        log.warning("%s", e)
        return None


def _timing(run_a: Run, a: Row, run_b: Run, b: Row) -> Test | None:
    sa, sb = _samples(run_a, a[1]), _samples(run_b, b[1])
    if sa is not None and sb is not None and len(sa.all) and len(sb.all):
        return on_samples(sa.processes, sb.processes)
    mean, std, n = AT["latency_mean"], AT["latency_std"], AT["latency_n"]
    try:
        return on_summaries(a[mean], a[std], int(a[n]), b[mean], b[std], int(b[n]))
    except TypeError:  # a summary missing
        return None


def timing_change(run_a: Run, a: Record, run_b: Run, b: Record) -> Test | None:
    """The latency test between two records of their runs (raw samples where both kept them,
    else mean/std/n); None when neither is there."""
    return _timing(run_a, _row(a), run_b, _row(b))


def compared_records(run: Run) -> list[Record]:
    """A run's records as comparing needs them: from its index (figures and raw-samples path
    only), else read line by line."""
    found = index.open_run(run)
    return found.records(COMPARED, ok=True) if found is not None else run.records()


def _verdict(change: float, worse_if_higher: bool, tolerance: float) -> str:
    if change == 0:
        return "same"
    worse = change > 0 if worse_if_higher else change < 0
    if abs(change) <= tolerance:
        return "within tolerance"
    return "regression" if worse else "improvement"


def compare_runs(run_a: Run, run_b: Run, *, tolerance: float = TOLERANCE,
                 alpha: float = ALPHA, unchanged: bool = True) -> list[Change]:
    """Every shared ok cell's changes from ``run_a`` to ``run_b`` (``unchanged=False``: but
    those whose verdict is "same"; the timing tests are Holm-corrected over all cells
    either way)."""
    before, after = _rows(run_a), _rows(run_b)
    exact = [(name, AT[name], name in RELATIVE, higher_is_better(name) is False)
             for name in EXACT]
    timed_at = AT[TIMED]
    timed: list[tuple[str, Test]] = []
    out: list[Change] = []
    for cell_id, a in before.items():
        b = after.get(cell_id)
        if b is None:
            continue
        if a[timed_at] is not None and b[timed_at] is not None:
            test = _timing(run_a, a, run_b, b)
            if test is not None:
                timed.append((cell_id, test))
        for name, at, relative, up_bad in exact:
            x, y = a[at], b[at]
            if x is None or y is None:
                continue
            change = (y / x - 1 if x else 0.0) if relative else y - x
            verdict = _verdict(change, up_bad, tolerance)
            if unchanged or verdict != "same":
                out.append(Change(cell_id, name, x, y, a[at + 1], change, verdict=verdict))
    rejected = holm([t.p_value for _, t in timed], alpha)
    for (cell_id, test), significant in zip(timed, rejected, strict=True):
        verdict = (_verdict(test.change, True, tolerance) if significant else "within noise")
        if unchanged or verdict != "same":
            a, b = before[cell_id], after[cell_id]
            out.append(Change(cell_id, TIMED, a[timed_at], b[timed_at], a[timed_at + 1],
                              test.change, test.low, test.high, test.p_value, test.test,
                              significant, verdict))
    return sorted(out, key=lambda c: (c.cell_id, c.metric))


def machines_differ(run_a: Run, run_b: Run) -> str | None:
    """Why two runs' timings were taken on different machines, or None."""

    ma, mb = (identity(r.manifest().get("machine") or {}) for r in (run_a, run_b))
    if not any(ma.values()) or not any(mb.values()) or ma == mb:
        return None
    diff = ", ".join(f"{k} {ma[k]!r} vs {mb[k]!r}" for k in ma if ma[k] != mb[k])
    return f"the runs were timed on different machines ({diff})"
