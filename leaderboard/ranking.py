"""The home page's leaderboard: cells grouped by model, each model's variants ranked per device
on one metric (its direction from :mod:`bench.results.metrics`), the best highlighted, estimated
figures marked, empty cells blank."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
from pandas.io.formats.style import Styler

from bench.results.formatting import signed
from bench.results.metrics import higher_is_better, is_task_metric
from leaderboard.data import (
    KEY_METRICS,
    display_interval,
    display_values,
    header,
    metric_names,
    number,
    reference_label,
    unit_of,
    with_interval,
)

#: Prefix of an estimated figure (no board measured it), with its colour.
ESTIMATED_MARK = "≈"
ESTIMATED_STYLE = "color: #7b4f9e"
#: Suffix of an emulated figure (QEMU, the virtual energy bench: a model of the board, not a
#: measurement of one).
EMULATED_MARK = "(emulated)"
#: The best variant of a model on a device.
BEST_STYLE = "background-color: #d8f3dc; font-weight: bold"
#: Suffix of a latency whose timing was unstable (the record's ``details.warnings``).
UNSTABLE_MARK = "⚠"
LEGEND = (f"**Bold on green**: the best variant of each model on that device by the ranking "
          f"metric. {ESTIMATED_MARK} in purple: estimated (no board measured it), with its 80 % "
          f"interval in brackets; {EMULATED_MARK} after a figure: an emulated board or the "
          f"virtual energy bench gave it; other figures were measured. {UNSTABLE_MARK} after a "
          "latency: its timing was unstable (see the cell's warnings on Run detail). Click a "
          "column header to sort.")
#: Styling stops above this many cells (pandas' Styler limit is 262,144).
MAX_STYLED_CELLS = 200_000


def latest_runs(df: pd.DataFrame) -> list[str]:
    """The newest run (``suite/run_id``; run ids start with their UTC start) of each suite."""
    if df.empty:
        return []
    newest = df.groupby("suite")["run_id"].max()
    return sorted(f"{suite}/{run_id}" for suite, run_id in newest.items())


def rankable_metrics(df: pd.DataFrame) -> list[str]:
    """Metrics with a direction and a value in ``df``: task metrics first, then costs."""
    names = [m for m in metric_names(df)
             if higher_is_better(m) is not None and df[m].notna().any()]
    return [m for m in names if is_task_metric(m)] + [m for m in names if not is_task_metric(m)]


def rank(df: pd.DataFrame, metric: str) -> pd.Series:
    """Each ok cell's rank among its model's variants on its device in its run (1 = best on
    ``metric``; ties share a rank); NaN when the cell has no value."""
    values = df[metric].where(df["status"].eq("ok"))
    ascending = not higher_is_better(metric)
    return values.groupby([df["run"], df["model"], df["device"]]).rank(method="min",
                                                                        ascending=ascending)


@dataclass
class Board:
    """The leaderboard table and what to mark in it."""

    table: pd.DataFrame
    ranked_by: str  # the ranking metric's column
    best: pd.Series  # per row: the best variant of its model on its device
    estimated: dict[str, pd.Series] = field(default_factory=dict)  # column → per row
    formats: dict[str, Callable[[float], str]] = field(default_factory=dict)  # column → text
    unstable: dict[str, pd.Series] = field(default_factory=dict)  # latency column → per row
    intervals: dict[str, tuple[pd.Series, pd.Series]] = field(default_factory=dict)  # low, high
    emulated: dict[str, pd.Series] = field(default_factory=dict)  # column → per row


def board(df: pd.DataFrame, metric: str, metrics: list[str]) -> Board:
    """Rows grouped by model (then device, best variant first); columns: ids, ``rank``, the
    ranking metric, the other ``metrics`` with units (bytes as KB), deltas vs the reference
    variant, size ratio, method, status (the verdict: ``unsupported`` rather than an error,
    ``expected miss``…), checks, note and run."""
    df = df.assign(rank=rank(df, metric))
    df = df.sort_values(["suite", "model", "device", "rank", "variant"], na_position="last")
    ids = (["suite"] if df["suite"].nunique() > 1 else []) + ["model", "variant", "device"]
    table = df[ids + ["rank"]].copy()
    formats: dict[str, Callable[[float], str]] = {"rank": "{:.0f}".format}
    estimated: dict[str, pd.Series] = {}
    unstable: dict[str, pd.Series] = {}
    emulated: dict[str, pd.Series] = {}
    intervals: dict[str, tuple[pd.Series, pd.Series]] = {}
    warned = df.get("warnings", pd.Series(index=df.index, dtype=object)).notna()
    versus = reference_label(df)
    for m in [metric, *(m for m in metrics if m != metric)]:
        if m not in df.columns:
            continue
        column = header(m, unit_of(df, m))
        table[column], formats[column] = display_values(df, m), number
        how = df.get(f"{m}__method", pd.Series(index=df.index))
        estimated[column], emulated[column] = how.eq("estimated"), how.eq("emulated")
        if (bounds := display_interval(df, m)) is not None:
            intervals[column] = bounds
        if m.startswith("latency"):
            unstable[column] = warned
        if f"Δ{m}" in df.columns:
            delta = f"Δ{m} {versus}"
            table[delta], formats[delta], estimated[delta] = df[f"Δ{m}"], signed, \
                estimated[column]
    if "size_ratio" in df.columns:
        table["size ×smaller"], formats["size ×smaller"] = df["size_ratio"], "{:.2f}×".format
    for c in ["method", "status", "checks", "note", "run"]:
        if c in df.columns:
            table[c] = df["outcome"] if c == "status" and "outcome" in df.columns else df[c]
    table = table.reset_index(drop=True)
    best = df["rank"].eq(1).reset_index(drop=True)
    estimated = {c: s.reset_index(drop=True) for c, s in estimated.items()}
    unstable = {c: s.reset_index(drop=True) for c, s in unstable.items()}
    emulated = {c: s.reset_index(drop=True) for c, s in emulated.items()}
    intervals = {c: (lo.reset_index(drop=True), hi.reset_index(drop=True))
                 for c, (lo, hi) in intervals.items()}
    return Board(table, header(metric, unit_of(df, metric)), best, estimated, formats, unstable,
                 intervals, emulated)


def style(b: Board) -> Styler | pd.DataFrame:
    """The table with blank empty cells, number formats, the best variants in bold on green and
    estimated figures prefixed with :data:`ESTIMATED_MARK` in purple, with their 80 % interval
    when they have one (plain above :data:`MAX_STYLED_CELLS`)."""
    t = b.table
    if t.size > MAX_STYLED_CELLS:
        return t
    styler = t.style.format(na_rep="").format(b.formats, na_rep="")
    for column, mask in b.estimated.items():
        rows = t.index[mask & t[column].notna()]
        fmt = b.formats[column]
        styler = styler.format(lambda v, fmt=fmt: f"{ESTIMATED_MARK} {fmt(v)}",
                               subset=pd.IndexSlice[rows, [column]])
    for column, (low, high) in b.intervals.items():  # ≈ 82.04 (68.3–110.2)
        for row in t.index[low.notna() & high.notna() & t[column].notna()]:
            styler = styler.format(
                lambda v, lo=low[row], hi=high[row]: f"{ESTIMATED_MARK} {with_interval(v, lo, hi)}",
                subset=pd.IndexSlice[[row], [column]])
    for column, mask in b.emulated.items():
        rows = t.index[mask & t[column].notna()]
        fmt = b.formats[column]
        styler = styler.format(lambda v, fmt=fmt: f"{fmt(v)} {EMULATED_MARK}",
                               subset=pd.IndexSlice[rows, [column]])
    for column, mask in b.unstable.items():
        rows = t.index[mask & t[column].notna()]
        fmt = b.formats[column]
        styler = styler.format(lambda v, fmt=fmt: f"{fmt(v)} {UNSTABLE_MARK}",
                               subset=pd.IndexSlice[rows, [column]])
    css = pd.DataFrame("", index=t.index, columns=t.columns)
    for column in ("variant", b.ranked_by):
        css.loc[b.best, column] = BEST_STYLE
    for column, mask in b.estimated.items():
        css.loc[mask, column] = (css.loc[mask, column] + "; " + ESTIMATED_STYLE).str.lstrip("; ")
    return styler.apply(lambda _: css, axis=None)


def default_metric(metrics: list[str]) -> str | None:
    """The metric the board ranks by at first: the first key metric that is a task metric,
    else the first rankable one."""
    preferred = [m for m in KEY_METRICS if m in metrics and is_task_metric(m)]
    return (preferred or metrics or [None])[0]
