"""Compare two runs cell by cell: for each metric the change, and for timings its 95 % interval
and whether it is significant (raw samples where both runs kept them, else the stored summaries;
Holm-corrected over the cells). A timing change inside the noise is never a regression."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

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


def _samples(run: Run, record: Record) -> raw.Samples | None:
    relative = (record.details or {}).get("samples")
    if not isinstance(relative, str):
        return None
    try:
        return raw.load(run.path, relative)
    except ValueError as e:
        log.warning("%s", e)
        return None


def timing_change(run_a: Run, a: Record, run_b: Run, b: Record) -> Test | None:
    """The latency test between two records of their runs (raw samples where both kept them,
    else mean/std/n); None when neither is there."""
    sa, sb = _samples(run_a, a), _samples(run_b, b)
    if sa is not None and sb is not None and len(sa.all) and len(sb.all):
        return on_samples(sa.processes, sb.processes)
    try:
        return on_summaries(a.value("latency_mean"), a.value("latency_std"),
                            int(a.value("latency_n")), b.value("latency_mean"),
                            b.value("latency_std"), int(b.value("latency_n")))
    except (KeyError, TypeError):
        return None


#: The figures comparing runs reads (with the timing summaries the test falls back on).
COMPARED = (*EXACT, TIMED, "latency_mean", "latency_std", "latency_n")


def compared_records(run: Run) -> list[Record]:
    """A run's records as comparing needs them: from its index (figures and raw-samples path
    only), else read line by line."""
    from bench.results import index

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
                 alpha: float = ALPHA) -> list[Change]:
    """Every shared ok cell's changes from ``run_a`` to ``run_b``."""
    before = {r.cell_id: r for r in compared_records(run_a) if r.status == "ok"}
    after = {r.cell_id: r for r in compared_records(run_b) if r.status == "ok"}
    shared = [c for c in before if c in after]
    worse_if_higher = {name: higher_is_better(name) is False for name in EXACT}
    timed: list[tuple[str, Test]] = []
    out: list[Change] = []
    for cell_id in shared:
        a, b = before[cell_id], after[cell_id]
        if TIMED in a.metrics and TIMED in b.metrics:
            test = timing_change(run_a, a, run_b, b)
            if test is not None:
                timed.append((cell_id, test))
        for name in EXACT:
            if name in a.metrics and name in b.metrics:
                x, y = a.metrics[name].value, b.metrics[name].value
                change = (y / x - 1 if x else 0.0) if name in RELATIVE else y - x
                up_bad = worse_if_higher[name]
                out.append(Change(cell_id, name, x, y, a.metrics[name].unit, change,
                                  verdict=_verdict(change, up_bad, tolerance)))
    rejected = holm([t.p_value for _, t in timed], alpha)
    for (cell_id, test), significant in zip(timed, rejected, strict=True):
        a, b = before[cell_id].metrics[TIMED], after[cell_id].metrics[TIMED]
        verdict = (_verdict(test.change, True, tolerance) if significant else "within noise")
        out.append(Change(cell_id, TIMED, a.value, b.value, a.unit, test.change, test.low,
                          test.high, test.p_value, test.test, significant, verdict))
    return sorted(out, key=lambda c: (c.cell_id, c.metric))


def machines_differ(run_a: Run, run_b: Run) -> str | None:
    """Why two runs' timings were taken on different machines, or None."""

    ma, mb = (identity(r.manifest().get("machine") or {}) for r in (run_a, run_b))
    if not any(ma.values()) or not any(mb.values()) or ma == mb:
        return None
    diff = ", ".join(f"{k} {ma[k]!r} vs {mb[k]!r}" for k in ma if ma[k] != mb[k])
    return f"the runs were timed on different machines ({diff})"
