"""The leaderboard's data layer: plain pandas over the result store (no Streamlit here).

Every run of a results folder becomes one flat frame (:func:`bench.table.frame`, one row per
cell) with a few derived columns: ``run`` (``suite/run_id``), ``method`` (``estimated`` when any
figure of the cell is estimated, else ``measured``), ``checks`` (passed/total and the failed
names) and ``Δ<metric>`` deltas against the reference (fp32) variant of the same model, device
and run. The other functions filter that frame and answer the pages' questions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.metrics import TASK_METRICS
from bench.record import Record
from bench.store import MANIFEST, RECORDS, Store
from bench.table import frame

ID_COLUMNS = ["suite", "run", "cell_id", "model", "variant", "device", "runner", "status"]
FILTERS = ["suite", "run", "model", "variant", "device", "runner", "status", "method"]
#: Metrics the leaderboard shows first, in this order (others follow as found).
KEY_METRICS = ["model_size", "arena_used", "arena_min", "latency_p50", "energy_uj", "accuracy",
               "f1_macro", "mae", "rmse", "auc", "f1"]
#: Task metrics and whether larger is better.
HIGHER_BETTER: dict[str, bool] = {m: hb for task in TASK_METRICS.values() for m, hb in task.items()}
#: Cost metrics (lower is better): x axes of the trade-off page.
COSTS = ["latency_p50", "model_size", "arena_used", "energy_uj"]
REPO = Path(__file__).resolve().parents[1]


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


def unit_of(df: pd.DataFrame, metric: str) -> str:
    units = df.get(f"{metric}__unit")
    if units is None:
        return ""
    units = units.dropna()
    return str(units.iloc[0]) if len(units) else ""


def _checks(row: pd.Series, names: list[str]) -> str:
    results = {n: row[f"check:{n}"] for n in names if pd.notna(row[f"check:{n}"])}
    if not results:
        return ""
    failed = [n for n, v in results.items() if not bool(v)]
    text = f"{len(results) - len(failed)}/{len(results)}"
    return f"✗ {text} {', '.join(failed)}" if failed else f"✓ {text}"


def add_derived(df: pd.DataFrame, reference: str = "fp32") -> pd.DataFrame:
    """``run``, ``method``, ``checks`` and ``Δ<task metric>`` / ``size_ratio`` vs ``reference``."""
    df = df.copy()
    if df.empty:
        return pd.DataFrame(columns=[*ID_COLUMNS, "method", "checks"])
    df["run"] = df["suite"] + "/" + df["run_id"]
    method_cols = [c for c in df.columns if c.endswith("__method")]
    estimated = (df[method_cols] == "estimated").any(axis=1) if method_cols else False
    df["method"] = pd.Series(estimated, index=df.index).map({True: "estimated",
                                                             False: "measured"})
    checks = [c[len("check:"):] for c in df.columns if c.startswith("check:")]
    df["checks"] = df.apply(_checks, axis=1, args=(checks,)) if checks else ""
    keys = ["run", "model", "device"]
    ref = df[(df["variant"] == reference) & (df["status"] == "ok")].drop_duplicates(keys)
    metrics = [m for m in HIGHER_BETTER if m in df.columns]
    size = ["model_size"] if "model_size" in df.columns else []
    if metrics or size:
        merged = df[keys].merge(ref[keys + metrics + size], on=keys, how="left",
                                suffixes=("", "__ref"))
        merged.index = df.index
        ref_cols = {m: merged[m] for m in metrics + size}
        for m in metrics:
            df[f"Δ{m}"] = df[m] - ref_cols[m]
        if size:
            df["size_ratio"] = ref_cols["model_size"] / df["model_size"]
    return df


def load_frame(root: Path | str, reference: str = "fp32") -> pd.DataFrame:
    """Every record of every run under ``root`` as one frame with the derived columns."""
    records = [r for run in Store(root).runs() for r in run.records()]
    return add_derived(frame(records), reference)


def options(df: pd.DataFrame, column: str) -> list[str]:
    """The distinct values of a column, sorted (for a filter's choices)."""
    if column not in df.columns:
        return []
    return sorted(str(v) for v in df[column].dropna().unique())


def apply_filters(df: pd.DataFrame, filters: dict[str, list[str] | None]) -> pd.DataFrame:
    """Rows whose value is among the chosen ones, per column; an empty choice keeps all."""
    mask = pd.Series(True, index=df.index)
    for column, chosen in filters.items():
        if chosen and column in df.columns:
            mask &= df[column].astype(str).isin([str(c) for c in chosen])
    return df[mask]


def header(metric: str, unit: str) -> str:
    """A display column name: bytes are shown in KB."""
    unit = "KB" if unit == "B" else unit
    return f"{metric} [{unit}]" if unit else metric


def display_table(df: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """The leaderboard table: ids, status, method, metrics with units (bytes as KB), deltas vs
    the reference, checks and the error."""
    if metrics is None:
        metrics = [m for m in metric_names(df) if m in KEY_METRICS]
    out = df[[c for c in ["cell_id", "run", "status", "method"] if c in df.columns]].copy()
    for m in metrics:
        if m not in df.columns:
            continue
        unit = unit_of(df, m)
        out[header(m, unit)] = df[m] / 1024 if unit == "B" else df[m]
        if f"Δ{m}" in df.columns:
            out[f"Δ{m} vs fp32"] = df[f"Δ{m}"]
    if "size_ratio" in df.columns:
        out["size ×smaller"] = df["size_ratio"]
    for c in ["checks", "error"]:
        if c in df.columns:
            out[c] = df[c]
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


def device_table(dirs: list[Path] | None = None) -> pd.DataFrame:
    """Device files as rows: id, name, core, runtime, flash/RAM capacity, power, battery."""
    from bench.devices import list_devices, search_dirs

    devices, _ = list_devices(search_dirs([*(dirs or []), REPO / "devices"]))
    rows = [{"device": d.id, "name": d.name, "core": d.core, "runtime": d.runtime,
             "flash_kb": d.memory.flash_kb, "ram_kb": d.memory.ram_kb,
             "active_mw": d.power.active_mw if d.power else None,
             "sleep_mw": d.power.sleep_mw if d.power else None,
             "voltage_v": d.power.voltage_v if d.power else None,
             "battery_mah": d.power.battery_mah if d.power else None} for d in devices]
    return pd.DataFrame(rows, columns=["device", "name", "core", "runtime", "flash_kb", "ram_kb",
                                       "active_mw", "sleep_mw", "voltage_v", "battery_mah"])


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


def lower_is_better(metric: str) -> bool:
    base = metric.removeprefix("Δ")
    return not HIGHER_BETTER.get(base, False)


def compare_runs(df: pd.DataFrame, run_a: str, run_b: str, metrics: list[str],
                 tolerance: float = 0.05) -> pd.DataFrame:
    """Cells of two runs side by side (matched on model, variant, device): each metric's
    value in A and B, the relative change and ``regressed:<metric>`` when B is worse than A by
    more than ``tolerance`` (relative; absolute 0.005 for task metrics)."""
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
        if name in HIGHER_BETTER:
            worse = (va - vb) > 0.005 if HIGHER_BETTER[name] else (vb - va) > 0.005
        else:
            worse = (vb - va) > tolerance * va.abs()
        m[f"{name} change"] = (vb - va) / va.abs()
        m[f"regressed:{name}"] = worse.fillna(False)
        regressions.append(m[f"regressed:{name}"])
    m["regressed"] = pd.concat(regressions, axis=1).any(axis=1) if regressions else False
    status_changed = (m["status A"] == "ok") & m["status B"].notna() & (m["status B"] != "ok")
    m["regressed"] = m["regressed"] | status_changed
    return m.drop(columns=keys).sort_values("cell").reset_index(drop=True)


# --- deploy advisor -----------------------------------------------------------------------------

CLOUD_ROUND_TRIP_MS = 100.0


@dataclass
class Requirements:
    """What the application needs."""

    model: str
    latency_budget_ms: float = 100.0
    privacy_critical: bool = False
    reliable_connectivity: bool = True
    high_bandwidth: bool = False
    sensor_rate_hz: float = 1.0
    battery_days: float = 0.0  # 0: mains powered, no battery requirement


@dataclass
class Advice:
    recommendation: str  # "edge" | "cloud" | "hybrid"
    steps: list[tuple[str, str, str]] = field(default_factory=list)  # question, answer, reason
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)  # every candidate, with verdicts
    summary: str = ""


def battery_days(energy_uj: Any, rate_hz: float, dev: pd.Series) -> float | None:
    """Days a battery lasts at ``rate_hz`` inferences per second (sleep power in between)."""
    mah, volts = dev.get("battery_mah"), dev.get("voltage_v")
    if pd.isna(energy_uj) or mah is None or volts is None or pd.isna(mah) or pd.isna(volts):
        return None
    sleep = dev.get("sleep_mw")
    watts = energy_uj * 1e-6 * rate_hz + (0 if sleep is None or pd.isna(sleep) else sleep / 1000)
    return None if watts <= 0 else mah * volts * 3.6 / watts / 86400


def candidate_cells(df: pd.DataFrame, devices: pd.DataFrame, req: Requirements) -> pd.DataFrame:
    """The model's ok cells with each requirement's verdict and ``meets_all``."""
    cells = df[(df["model"] == req.model) & (df["status"] == "ok")].copy()
    cells = cells.drop_duplicates(["model", "variant", "device"], keep="last")
    cap = devices.set_index("device") if not devices.empty else pd.DataFrame()
    need = needs(df[df["model"] == req.model]).set_index(["model", "variant"])
    rows = []
    for _, c in cells.iterrows():
        dev = cap.loc[c["device"]] if c["device"] in cap.index else pd.Series(dtype=object)
        lat = c.get("latency_p50")
        flash, ram = (need.loc[(c["model"], c["variant"])]
                      if (c["model"], c["variant"]) in need.index else (None, None))
        period_ms = 1000 / req.sensor_rate_hz if req.sensor_rate_hz > 0 else float("inf")
        row = {"cell": c["cell_id"], "run": c["run"], "variant": c["variant"],
               "device": c["device"], "method": c["method"], "latency_p50 [ms]": lat,
               "flash [KB]": flash, "ram [KB]": ram,
               "meets latency": bool(pd.notna(lat) and lat <= req.latency_budget_ms),
               "keeps up with sensor": bool(pd.notna(lat) and lat <= period_ms)}
        fcap, rcap = dev.get("flash_kb"), dev.get("ram_kb")
        row["fits flash"] = bool(fcap is None or pd.isna(fcap) or (flash is not None
                                                                   and flash <= fcap))
        row["fits RAM"] = bool(rcap is None or pd.isna(rcap) or ram is None or pd.isna(ram)
                               or ram <= rcap)
        days = battery_days(c.get("energy_uj"), req.sensor_rate_hz, dev)
        row["battery days"] = days
        row["meets battery"] = req.battery_days <= 0 or (days is not None
                                                         and days >= req.battery_days)
        checks = ["meets latency", "keeps up with sensor", "fits flash", "fits RAM",
                  "meets battery"]
        row["meets_all"] = all(row[k] for k in checks)
        rows.append(row)
    return pd.DataFrame(rows)


def advise(df: pd.DataFrame, devices: pd.DataFrame, req: Requirements) -> Advice:
    """Walk the edge-versus-cloud decision with the measurements; recommend edge/cloud/hybrid."""
    cells = candidate_cells(df, devices, req)
    fitting = cells[cells["meets_all"]] if not cells.empty else cells
    steps: list[tuple[str, str, str]] = []
    edge_reasons = []
    fast = req.latency_budget_ms < CLOUD_ROUND_TRIP_MS
    steps.append(("Latency under 100 ms needed?", "yes" if fast else "no",
                  f"budget {req.latency_budget_ms:g} ms: a cloud round trip alone is about "
                  f"{CLOUD_ROUND_TRIP_MS:g} ms, so inference must run on the device" if fast else
                  f"budget {req.latency_budget_ms:g} ms leaves room for a cloud round trip"))
    if fast:
        edge_reasons.append("latency")
    steps.append(("Privacy-critical data?", "yes" if req.privacy_critical else "no",
                  "raw data must not leave the device" if req.privacy_critical
                  else "data may be sent off the device"))
    if req.privacy_critical:
        edge_reasons.append("privacy")
    steps.append(("High-bandwidth data?", "yes" if req.high_bandwidth else "no",
                  f"streaming raw data at {req.sensor_rate_hz:g} Hz is costly: process it locally"
                  if req.high_bandwidth else "uploading the data is affordable"))
    if req.high_bandwidth:
        edge_reasons.append("bandwidth")
    steps.append(("Reliable connectivity?", "yes" if req.reliable_connectivity else "no",
                  "the cloud is reachable when needed" if req.reliable_connectivity
                  else "the device must work offline"))
    if not req.reliable_connectivity:
        edge_reasons.append("connectivity")
    too_big = fitting.empty
    n = len(cells)
    why_big = ("no record of this model" if n == 0 else
               f"none of {n} measured cells meets every requirement (flash, RAM, latency, "
               "sensor rate, battery)" if too_big else
               f"{len(fitting)} of {n} cells meet every requirement")
    steps.append(("Model bigger than the device?", "yes" if too_big else "no", why_big))
    if edge_reasons and not too_big:
        rec = "edge"
        summary = f"edge: needed for {', '.join(edge_reasons)}, and {why_big}"
    elif edge_reasons:
        rec = "hybrid"
        summary = (f"hybrid: {', '.join(edge_reasons)} call for the edge but {why_big}; run a "
                   "smaller model or pre-filtering on the device and the full model in the cloud")
    elif too_big:
        rec = "cloud"
        summary = f"cloud: nothing requires the edge and {why_big}"
    else:
        rec = "hybrid"
        summary = (f"hybrid: nothing requires the edge, {why_big}; infer on the device and use "
                   "the cloud for aggregation and retraining (or run it all in the cloud)")
    return Advice(rec, steps, cells, summary)


def get_record(root: Path | str, run: str, cell_id: str) -> Record | None:
    """One cell's full record (``run`` is ``suite/run_id``), or None."""
    suite, _, run_id = run.partition("/")
    for r in Store(root).runs(suite):
        if r.run_id == run_id:
            return next((x for x in r.records() if x.cell_id == cell_id), None)
    return None
