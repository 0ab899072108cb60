"""The leaderboard's data layer: plain pandas over the result store (no Streamlit here).

Every run of a results folder becomes one flat frame (:func:`bench.results.table.frame`, one row per
cell) with a few derived columns: ``run`` (``suite/run_id``), ``reference`` (the run's reference
variant, from its manifest), ``method`` (``estimated`` when any figure of the cell is estimated,
else ``measured``), ``checks`` (passed/total and the failed names, expected misses marked),
``note`` (the error, the runtime's reason for an unsupported cell, or why a miss is
expected) and ``Δ<task metric>`` / ``size_ratio`` against the reference variant of the same
model, device and run. Metric directions and units are the library's
(:mod:`bench.results.metrics`). The other functions filter that frame and answer the pages'
questions.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.monitors.base import traces_from_json
from bench.results import layers as layer_profiles
from bench.results import samples
from bench.results.compare import TIMED, Change
from bench.results.compare import compare_runs as compare_stored
from bench.results.formatting import quantity
from bench.results.metrics import UNITS, higher_is_better, is_task_metric
from bench.results.record import Record
from bench.results.store import MANIFEST, RECORDS, Run, Store

ID_COLUMNS = ["suite", "run", "cell_id", "model", "variant", "device", "runner", "status"]
FILTERS = ["suite", "run", "model", "variant", "device", "runner", "status", "method"]
#: Metrics the leaderboard shows first, in this order (others follow as found).
KEY_METRICS = ["model_size", "arena_used", "arena_min", "latency_p50", "energy_uj", "accuracy",
               "f1_macro", "mae", "rmse", "auc", "f1"]


def default_reference() -> str:
    """The reference variant a suite gets when it names none
    (:class:`bench.suite.spec.Settings`)."""
    from bench.suite.spec import Settings

    return Settings.model_fields["reference_variant"].default


def store_signature(root: Path | str) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime_ns, size) of every records and manifest file: changes when the store does."""
    root = Path(root)
    files = sorted([*root.glob(f"*/*/{RECORDS}"), *root.glob(f"*/*/{MANIFEST}")])
    out = []
    for p in files:
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        out.append((str(p.relative_to(root)), st.st_mtime_ns, st.st_size))
    return tuple(out)


def metric_names(df: pd.DataFrame) -> list[str]:
    """The metric columns of a frame (those with a ``__unit`` column), key metrics first."""
    names = [c[: -len("__unit")] for c in df.columns if c.endswith("__unit")]
    names = [n for n in names if not n.endswith("_delta")]  # shown as Δ columns instead
    return [m for m in KEY_METRICS if m in names] + [m for m in names if m not in KEY_METRICS]


def task_metrics(df: pd.DataFrame) -> list[str]:
    """Task metrics (accuracy, MAE, …) with at least one value in ``df``."""
    return [m for m in metric_names(df) if is_task_metric(m) and df[m].notna().any()]


def cost_metrics(df: pd.DataFrame) -> list[str]:
    """Metrics other than task metrics where lower is better (size, memory, latency, energy)
    with at least one value in ``df``."""
    return [m for m in metric_names(df) if not is_task_metric(m)
            and higher_is_better(m) is False and df[m].notna().any()]


def unit_of(df: pd.DataFrame, metric: str) -> str:
    """The unit the records give ``metric``, else the library's
    (:data:`bench.results.metrics.UNITS`)."""
    units = df.get(f"{metric}__unit")
    units = units.dropna() if units is not None else ()
    return str(units.iloc[0]) if len(units) else UNITS.get(metric, "")


def _checks(df: pd.DataFrame, names: list[str]) -> pd.Series:
    """Each row's checks: ``✓ 2/2``, ``✗ 1/2 flash_kb`` (failed names in column order; a miss
    the suite expected reads ``flash_kb (expected)``), or ``""`` when none applied. Column by
    column, not row by row (100,000 rows in well under a second)."""
    known = pd.Series(0, index=df.index)
    passed = pd.Series(0, index=df.index)
    failed = pd.Series("", index=df.index, dtype=object)
    expected = (df["expected_checks"].fillna("") if "expected_checks" in df
                else pd.Series("", index=df.index))
    expected = "," + expected.astype(str) + ","
    for n in names:
        column = df[f"check:{n}"]
        applies = column.notna()
        ok = applies & column.where(applies, False).astype(bool)
        known += applies
        passed += ok
        label = pd.Series(n, index=df.index).where(
            ~expected.str.contains(f",{n},", regex=False), f"{n} (expected)")
        failed = failed.where(~(applies & ~ok), failed + ", " + label)
    text = passed.astype(str) + "/" + known.astype(str)
    failed = failed.str[2:]
    out = ("✓ " + text).where(failed == "", "✗ " + text + " " + failed)
    return out.where(known > 0, "")


def _notes(df: pd.DataFrame) -> pd.Series:
    """What the tables show beside each cell's figures: its error, the runtime's reason when it
    cannot run the variant, or why a miss is expected (None when there is nothing to say)."""
    def text(name: str) -> pd.Series:
        column = df[name] if name in df else pd.Series(None, index=df.index, dtype=object)
        return column.where(column.map(lambda v: isinstance(v, str) and v != ""), None)

    error, expected = text("error"), text("expected")
    passed = (df["outcome"] == "unexpected pass") if "outcome" in df else pd.Series(
        False, index=df.index)
    because = ("expected: " + expected).where(~passed, "expected to miss, passed: " + expected)
    return error.where(error.notna(), because.where(expected.notna(), None))


def add_derived(df: pd.DataFrame, references: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``run``, ``reference``, ``method``, ``checks``, ``Δ<task metric>`` and ``size_ratio``.

    ``references`` maps a run (``suite/run_id``) to its reference variant; a run it does not
    name gets :func:`default_reference`.
    """
    df = df.copy()
    if df.empty:
        return pd.DataFrame(columns=[*ID_COLUMNS, "reference", "method", "checks"])
    df["run"] = df["suite"] + "/" + df["run_id"]
    df["reference"] = df["run"].map(dict(references or {})).fillna(default_reference())
    method_cols = [c for c in df.columns if c.endswith("__method")]
    def any_of(method: str) -> pd.Series:
        found = (df[method_cols] == method).any(axis=1) if method_cols else False
        return pd.Series(found, index=df.index)

    # the least direct way any of a row's figures was obtained: an estimate, else an emulation
    # (QEMU, the virtual energy bench), else a measurement
    df["method"] = any_of("estimated").map({True: "estimated", False: None}).fillna(
        any_of("emulated").map({True: "emulated", False: "measured"}))
    checks = [c[len("check:"):] for c in df.columns if c.startswith("check:")]
    df["checks"] = _checks(df, checks) if checks else ""
    df["note"] = _notes(df)
    keys = ["run", "model", "device"]
    ref = df[(df["variant"] == df["reference"]) & (df["status"] == "ok")].drop_duplicates(keys)
    metrics = [m for m in metric_names(df) if is_task_metric(m)]
    size = ["model_size"] if "model_size" in df.columns else []
    if metrics or size:
        merged = df[keys].merge(ref[keys + metrics + size], on=keys, how="left")
        merged.index = df.index
        for m in metrics:
            df[f"Δ{m}"] = df[m] - merged[m]
        if size:
            df["size_ratio"] = merged["model_size"] / df["model_size"]
    return df


def run_references(runs: list[Run]) -> dict[str, str]:
    """Each run's reference variant, as its manifest records it (runs whose manifest lacks one
    are left out)."""
    out = {}
    for run in runs:
        reference = run.manifest().get("reference_variant")
        if isinstance(reference, str):
            out[f"{run.suite}/{run.run_id}"] = reference
    return out


def load_frame(root: Path | str) -> pd.DataFrame:
    """Every record of every run under ``root`` as one frame with the derived columns."""
    from bench.results import index

    runs = Store(root).runs()
    return add_derived(index.frame(runs), run_references(runs))


def options(df: pd.DataFrame, column: str) -> list[str]:
    """The distinct values of a column, sorted (for a filter's choices)."""
    if column not in df.columns:
        return []
    return sorted(str(v) for v in df[column].dropna().unique())


def apply_filters(df: pd.DataFrame, filters: Mapping[str, list[str] | None]) -> pd.DataFrame:
    """Rows whose value is among the chosen ones, per column; an empty choice keeps all."""
    mask = pd.Series(True, index=df.index)
    for column, chosen in filters.items():
        if chosen and column in df.columns:
            mask &= df[column].astype(str).isin([str(c) for c in chosen])
    return df[mask]


def display_unit(unit: str) -> str:
    """The unit a figure is shown in: bytes are shown in KB."""
    return "KB" if unit == "B" else unit


def display_values(df: pd.DataFrame, metric: str) -> pd.Series:
    """A metric's values in its display unit (bytes → KB)."""
    return df[metric] / 1024 if unit_of(df, metric) == "B" else df[metric]


def display_interval(df: pd.DataFrame, metric: str) -> tuple[pd.Series, pd.Series] | None:
    """An estimate's 80 % interval (``<metric>__low`` / ``__high``) in the metric's display
    unit, NaN where a figure has none; None when no row has one."""
    low, high = df.get(f"{metric}__low"), df.get(f"{metric}__high")
    if low is None or high is None or not (low.notna() & high.notna()).any():
        return None
    scale = 1 / 1024 if unit_of(df, metric) == "B" else 1
    return low * scale, high * scale


def with_interval(value: float, low: float, high: float) -> str:
    """``82.04 (68.3–110.2)``: a figure and its 80 % interval as the tables show them."""
    return f"{number(value)} ({number(low)}–{number(high)})"


def number(value: float) -> str:
    """A figure as the tables show it, in its column's unit: 4 significant digits, never
    rounded to zero (a sub-µs latency in ms is ``0.000412``), thousands in full with commas
    (``2,930`` rather than ``2.93e+03``; :func:`bench.results.formatting.quantity`)."""
    return quantity(value)


def header(metric: str, unit: str) -> str:
    """A display column name with the display unit, e.g. ``model_size [KB]``."""
    unit = display_unit(unit)
    return f"{metric} [{unit}]" if unit else metric


def reference_label(df: pd.DataFrame) -> str:
    """``vs fp32`` when every row shares one reference variant, else ``vs reference``."""
    refs = options(df, "reference")
    return f"vs {refs[0]}" if len(refs) == 1 else "vs reference"


def display_table(df: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """The per-cell table: ids, status (the verdict: ``unsupported``, ``expected miss``…),
    method, metrics with units (bytes as KB), deltas vs the run's reference variant, checks and
    the note."""
    if metrics is None:
        metrics = [m for m in metric_names(df) if m in KEY_METRICS]
    out = df[[c for c in ["cell_id", "run", "status", "method"] if c in df.columns]].copy()
    versus = reference_label(df)
    for m in metrics:
        if m not in df.columns:
            continue
        out[header(m, unit_of(df, m))] = display_values(df, m)
        if f"Δ{m}" in df.columns:
            out[f"Δ{m} {versus}"] = df[f"Δ{m}"]
    if "size_ratio" in df.columns:
        out["size ×smaller"] = df["size_ratio"]
    for c in ["checks", "note"]:
        if c in df.columns:
            out[c] = df[c]
    if "outcome" in df.columns and "status" in out.columns:  # unsupported, expected miss…
        out["status"] = df["outcome"]
    return out.reset_index(drop=True)


def pareto_front(df: pd.DataFrame, x: str, y: str, higher_better: bool = True) -> pd.DataFrame:
    """The non-dominated rows: no other row has lower-or-equal ``x`` and a better-or-equal
    ``y`` with one strictly better. Sorted by ``x``."""
    pts = df.dropna(subset=[x, y]).sort_values([x, y], ascending=[True, not higher_better])
    keep, best = [], None
    for idx, val in pts[y].items():
        if best is None or (val > best if higher_better else val < best):
            keep.append(idx)
            best = val
    return pts.loc[keep]


#: The group of cells whose record names no data set (a record written before it did).
NO_DATASET = "(data set not recorded)"


def dataset_groups(df: pd.DataFrame) -> list[str]:
    """The data sets of ``df``'s cells, the one with most cells first (then by name): a
    trade-off compares models on one data set, never across tasks."""
    if df.empty:
        return []
    labels = df.get("dataset", pd.Series(index=df.index, dtype=object)).fillna(NO_DATASET)
    counts = labels.value_counts()
    return sorted(counts.index, key=lambda name: (-counts[name], name))


def on_dataset(df: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The cells whose model was trained and scored on ``dataset``."""
    labels = df.get("dataset", pd.Series(index=df.index, dtype=object)).fillna(NO_DATASET)
    return df[labels == dataset]


DEVICE_COLUMNS = ["device", "name", "core", "runtime", "flash_kb", "ram_kb", "active_mw",
                  "sleep_mw", "voltage_v", "battery_mah"]


def device_table(dirs: list[Path] | None = None) -> pd.DataFrame:
    """Device files as rows (id, name, core, runtime, flash/RAM capacity, power, battery), from
    ``dirs`` and the library's search path (:func:`bench.devices.device.search_dirs`)."""
    from bench.devices.device import list_devices, search_dirs

    devices, _ = list_devices(search_dirs(dirs))
    rows = [{"device": d.id, "name": d.name, "core": d.core, "runtime": d.runtime,
             "flash_kb": d.memory.flash_kb, "ram_kb": d.memory.ram_kb,
             "active_mw": d.power.active_mw if d.power else None,
             "sleep_mw": d.power.sleep_mw if d.power else None,
             "voltage_v": d.power.voltage_v if d.power else None,
             "battery_mah": d.power.battery_mah if d.power else None} for d in devices]
    return pd.DataFrame(rows, columns=DEVICE_COLUMNS)


def needs(df: pd.DataFrame) -> pd.DataFrame:
    """Flash and RAM each model × variant needs, in KB: model size and the largest arena any
    record measured or estimated for it."""
    if df.empty or "model_size" not in df.columns:
        return pd.DataFrame(columns=["model", "variant", "flash_kb", "ram_kb"])
    ok = df[df["status"] == "ok"]
    ram = ok["arena_used"] if "arena_used" in ok.columns else pd.Series(float("nan"), ok.index)
    if "arena_min" in ok.columns:
        ram = ram.fillna(ok["arena_min"])
    g = ok.assign(_ram=ram).groupby(["model", "variant"], as_index=False)
    out = g.agg(flash_kb=("model_size", "max"), ram_kb=("_ram", "max"))
    out[["flash_kb", "ram_kb"]] = out[["flash_kb", "ram_kb"]] / 1024
    return out


def fit_table(df: pd.DataFrame, flash_kb: float | None, ram_kb: float | None) -> pd.DataFrame:
    """Each model × variant's flash and RAM need against a capacity: ``fits_flash``,
    ``fits_ram`` (None when either side is unknown) and ``fits`` (both not False)."""
    out = needs(df)

    def fits(need: pd.Series, cap: float | None) -> pd.Series:
        if cap is None or pd.isna(cap):
            return pd.Series([None] * len(need), index=need.index, dtype=object)
        return need.map(lambda v: None if pd.isna(v) else bool(v <= cap)).astype(object)

    out["fits_flash"] = fits(out["flash_kb"], flash_kb)
    out["fits_ram"] = fits(out["ram_kb"], ram_kb)
    out["fits"] = (out["fits_flash"] != False) & (out["fits_ram"] != False)  # noqa: E712
    return out


#: Task metrics regress when they lose more than this, absolutely (0.5 accuracy points).
TASK_TOLERANCE = 0.005


def timing_tests(root: Path | str, run_a: str, run_b: str, tolerance: float = 0.05
                 ) -> dict[str, Change]:
    """Each shared cell's ``latency_p50`` comparison with its significance
    (:func:`bench.results.compare.compare_runs`: raw samples, else mean/std/n), by cell id."""

    a, b = find_run(root, run_a), find_run(root, run_b)
    if a is None or b is None:
        return {}
    return {c.cell_id: c for c in compare_stored(a, b, tolerance=tolerance) if c.metric == TIMED}


def compare_runs(df: pd.DataFrame, run_a: str, run_b: str, metrics: list[str],
                 tolerance: float = 0.05, timing: Mapping[str, Change] | None = None
                 ) -> pd.DataFrame:
    """Cells of two runs side by side (matched on model, variant, device): each metric's
    value in A and B, the relative change and ``regressed:<metric>`` when B is worse than A
    (in the metric's direction) by more than ``tolerance`` (relative; absolute
    :data:`TASK_TOLERANCE` for task metrics). Metrics without a direction never regress.
    With ``timing`` (:func:`timing_tests`), a cell's latency regresses only when its change is
    significant too, and the table shows the test's verdict and p-value."""
    keys = ["model", "variant", "device"]
    a = df[df["run"] == run_a].drop_duplicates(keys)
    b = df[df["run"] == run_b].drop_duplicates(keys)
    metrics = [m for m in metrics if m in df.columns]
    cols = keys + ["status"] + metrics
    m = a[cols].merge(b[cols], on=keys, how="outer", suffixes=(" A", " B"))
    m.insert(0, "cell", m["model"] + "/" + m["variant"] + "@" + m["device"])
    regressions = []
    for name in metrics:
        va, vb = m[f"{name} A"], m[f"{name} B"]
        higher = higher_is_better(name)
        loss = (va - vb) if higher else (vb - va)
        allowed = TASK_TOLERANCE if is_task_metric(name) else tolerance * va.abs()
        worse = loss > allowed if higher is not None else pd.Series(False, index=m.index)
        m[f"{name} change"] = (vb - va) / va.abs()
        if name == "latency_p50" and timing:
            tested = m["cell"].map(timing.get)
            known = tested.notna()
            worse = worse.where(~known, tested.map(
                lambda t: t is not None and t.verdict == "regression"))
            m[f"{name} verdict"] = tested.map(lambda t: "" if t is None else t.verdict)
            m[f"{name} p"] = tested.map(lambda t: None if t is None else t.p_value)
        m[f"regressed:{name}"] = worse.fillna(False).astype(bool)
        regressions.append(m[f"regressed:{name}"])
    m["regressed"] = pd.concat(regressions, axis=1).any(axis=1) if regressions else False
    status_changed = (m["status A"] == "ok") & m["status B"].notna() & (m["status B"] != "ok")
    m["regressed"] = m["regressed"] | status_changed
    return m.drop(columns=keys).sort_values("cell").reset_index(drop=True)


def find_run(root: Path | str, run: str) -> Run | None:
    """The run named ``suite/run_id`` (exactly, as the ``run`` column gives it), or None."""
    suite, _, run_id = run.partition("/")
    return next((r for r in Store(root).runs(suite) if r.run_id == run_id), None)


def get_record(root: Path | str, run: str, cell_id: str) -> Record | None:
    """One cell's full record (``run`` is ``suite/run_id``), or None."""
    from bench.results import index

    found = find_run(root, run)
    if found is None:
        return None
    indexed = index.open_run(found)
    if indexed is not None:
        return indexed.find(cell_id)
    return next((x for x in found.records() if x.cell_id == cell_id), None)


#: The most points a plotted energy trace keeps (bucket means: the integral is kept).
TRACE_POINTS = 1500


def energy_trace(run: Run, relative: str, window: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One window of an energy-mode cell's saved current trace (``details.trace``) for plotting:
    ``time_s`` and ``current_ma`` (bucket means, at most :data:`TRACE_POINTS`), and the window's
    ``events``/``start``/``stop`` in seconds with its figures. ValueError when unreadable."""
    windows = traces_from_json(samples.load_trace(run.path, relative))
    if not 0 <= window < len(windows):
        raise ValueError(f"the trace has {len(windows)} windows, not {window + 1}")
    w = windows[window]
    current = w["current_a"] * 1e3
    step = max(1, -(-len(current) // TRACE_POINTS))
    cut = len(current) // step * step
    means = current[:cut].reshape(-1, step)
    kept = ~np.isnan(means).all(axis=1)
    points = pd.DataFrame({"time_s": (np.arange(len(means)) * step + step / 2) / w["rate_hz"],
                           "current_ma": np.nanmean(np.where(kept[:, None], means, 0), axis=1)})
    rate = w["rate_hz"]
    return points[kept].reset_index(drop=True), {
        "events_s": [e / rate for e in w["events"]], "start_s": w["start"] / rate,
        "stop_s": w["stop"] / rate, "inferences": w["inferences"], "energy_uj": w["energy_uj"],
        "voltage_v": w["voltage_v"], "rate_hz": rate, "windows": len(windows)}


def agreement_rows(details: Mapping[str, Any]) -> tuple[pd.DataFrame, str] | None:
    """A record's per-layer agreement with LiteRT (``details["agreement"]``,
    :mod:`bench.results.agreement`) as table rows — ``layer``, ``tensor``, ``vs LiteRT``,
    ``vs built-in kernels`` (largest difference; ``*`` beyond the tolerance) — and its verdict;
    None without one (its ``reason`` instead: ValueError); ValueError when malformed."""
    found = details.get("agreement")
    if not found:
        return None
    if not isinstance(found, Mapping):
        raise ValueError("details.agreement is not a mapping")
    if "reason" in found:
        raise ValueError(str(found["reason"]))
    try:
        rows = [{"layer": f"{int(x['index'])} {x['op']}", "tensor": int(x["tensor"]),
                 "vs LiteRT": f"{float(x['max_diff']):g}" + (" *" if x["differs"] else ""),
                 "vs built-in kernels": f"{float(x['builtin_max_diff']):g}"
                 + (" *" if x["builtin_differs"] else "")}
                for x in found.get("layers") or []]
        return (pd.DataFrame(rows, columns=["layer", "tensor", "vs LiteRT",
                                            "vs built-in kernels"]), str(found["verdict"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"details.agreement: a layer lacks a valid field ({exc})") from None


def layer_rows(details: Mapping[str, Any]) -> tuple[pd.DataFrame, str] | None:
    """A record's per-layer profile (:mod:`bench.results.layers`) as chart rows — ``layer``
    (``"3 CONV_2D"``), ``amount`` (instructions, or ms for timed layers), ``share_pct`` — and
    the axis title; None without layers; ValueError when the stored layers are malformed."""
    layers = details.get("layers")
    if not layers:
        return None
    if not isinstance(layers, list) or not all(isinstance(x, dict) for x in layers):
        raise ValueError("details.layers is not a list of layers")
    unit = layer_profiles.unit_of(layers)
    scale = 1.0 if unit == "instructions" else 1e-6  # time_ns → ms
    try:
        rows = pd.DataFrame({
            "layer": [f"{int(x['index'])} {x['op']}" for x in layers],
            "amount": [float(x[unit]) * scale for x in layers],
            "share_pct": [100 * float(x["share"]) for x in layers]})
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"details.layers: a layer lacks a valid field ({exc})") from None
    return rows, "instructions" if unit == "instructions" else "time [ms]"


def layer_change(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[pd.DataFrame, str]:
    """Per-layer change from cell A's profile to cell B's (the same graph: two runtimes,
    boards or runs of one model): ``layer``, ``A``, ``B`` (instructions, or ms for timed
    layers), ``change_pct`` and both shares; and the unit. ValueError when a cell keeps no
    layers (its reason), the two count in different units, or their operators differ."""
    profiles = []
    for name, details in (("A", a), ("B", b)):
        rows = layer_rows(details)
        if rows is None:
            reason = details.get("layers_reason") or "its record keeps none"
            raise ValueError(f"cell {name} has no per-layer profile: {reason}")
        profiles.append(rows)
    (ra, unit_a), (rb, unit_b) = profiles
    if unit_a != unit_b:
        raise ValueError(f"cell A counts {unit_a}, cell B {unit_b}: their layers cannot be "
                         "compared figure by figure (compare their shares on Run detail)")
    if list(ra["layer"]) != list(rb["layer"]):
        raise ValueError(f"the cells' graphs differ: A has {len(ra)} layers, B {len(rb)} "
                         "(or the same count of different operators)")
    change = np.where(ra["amount"] > 0, 100 * (rb["amount"] / ra["amount"] - 1), np.nan)
    return pd.DataFrame({"layer": ra["layer"], "A": ra["amount"], "B": rb["amount"],
                         "change_pct": change, "share_A_pct": ra["share_pct"],
                         "share_B_pct": rb["share_pct"]}), unit_a
