"""A cell's latency across the runs of its suite, with change points (the History page).

A change point is a step between consecutive runs that :mod:`bench.results.compare` calls a
regression or an improvement: significant (a two-level bootstrap on the raw samples, else
Welch's t on mean, std and n; Holm-corrected over the steps of the history) and beyond the
tolerance.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd

from bench.results.compare import compared_records, timing_change
from bench.results.record import Record
from bench.results.significance import holm
from bench.results.store import Run, Store
from leaderboard.charts import USERMETA, plain

METRIC = "latency_p50"


#: Each run of a suite (oldest first) with its ok records that have a latency, by cell id.
TimedRuns = list[tuple[Run, dict[str, Record]]]


def timed_runs(root: Path | str, suite: str) -> TimedRuns:
    """Each run of ``suite``, oldest first, with its timed records: every record file read
    once (the page's cell list and the chosen cell's history both come from this)."""
    return [(run, {r.cell_id: r for r in compared_records(run) if r.status == "ok" and METRIC in
                   r.metrics}) for run in Store(root).runs(suite)]


def cells_with_latency(runs: TimedRuns) -> list[str]:
    """Cell ids with a latency in at least one of ``runs``, sorted."""
    return sorted({cell for _, timed in runs for cell in timed})


def cell_history(runs: TimedRuns, cell_id: str, tolerance: float = 0.05) -> pd.DataFrame:
    """One row per run that timed ``cell_id``, oldest first: ``n`` (position), ``run``,
    ``latency`` (ms), and against the run before: ``change``, ``p``, ``verdict`` and
    ``change_point``."""
    rows, previous = [], None
    for run, timed in runs:
        record = timed.get(cell_id)
        if record is None:
            continue
        test = None if previous is None else timing_change(*previous, run, record)
        rows.append({"n": len(rows) + 1, "run": f"{run.suite}/{run.run_id}",
                     "latency": record.metrics[METRIC].value,
                     "change": None if test is None else test.change,
                     "p": None if test is None else test.p_value})
        previous = (run, record)
    df = pd.DataFrame(rows, columns=["n", "run", "latency", "change", "p"])
    df[["change", "p"]] = df[["change", "p"]].apply(pd.to_numeric)  # None → NaN
    tested = df["p"].notna()
    significant = pd.Series(False, index=df.index)
    if tested.any():
        significant.loc[tested] = holm(df.loc[tested, "p"].tolist())
    big = df["change"].abs() > tolerance
    df["change_point"] = (significant & big).astype(bool)
    df["verdict"] = [("" if pd.isna(c) else "slower" if point and c > 0 else "faster" if point
                      else "within noise" if not sig else "within tolerance")
                     for c, point, sig in zip(df["change"], df["change_point"], significant,
                                              strict=True)]
    return df


def history_chart(history: pd.DataFrame, title: str) -> alt.LayerChart:
    """The latency per run as a line with points; each change point as a red rule."""
    points = plain(history[["n", "latency", "run"]], ["n", "latency"])
    x = alt.X("n", title="run (oldest first)", axis=alt.Axis(tickMinStep=1))
    # ~g: a run of equal latencies collapses the domain to one value, which Vega labels with
    # six decimals (900.000000) unless told to drop trailing zeros
    y = alt.Y("latency", title=title, scale=alt.Scale(zero=False), axis=alt.Axis(format="~g"))
    line = alt.Chart(points).mark_line(color="#457b9d").encode(x=x, y=y)
    dots = alt.Chart(points).mark_point(filled=True, size=60, color="#457b9d").encode(
        x=x, y=y, tooltip=[alt.Tooltip("run", title="run"), alt.Tooltip("latency", title=title)])
    chart = line + dots
    steps = plain(history.loc[history["change_point"], ["n"]], ["n"])
    if len(steps):  # an empty layer would give Vega an infinite extent
        chart += alt.Chart(steps).mark_rule(color="#e63946", strokeWidth=2).encode(x="n")
    return chart.properties(usermeta=USERMETA)
