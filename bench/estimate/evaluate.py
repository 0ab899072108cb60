"""The estimator's honest error and interval coverage, as data and as Markdown tables.

Absolute percentage error |predicted / published − 1| over rows (one submission of one
benchmark), and coverage: the share of held-out rows inside their 80 % interval. Energy of a
held-out row = predicted latency × the power an estimate of its system would use
(:func:`bench.estimate.power.resolve` on a table block of the training rows and the device
files' datasheet figures); its interval widens the latency's by that source's spread, fitted
on the training rows alone (the datasheet spread on the training boards' datasheets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import textable
from bench.board.reference_models import BENCHMARKS
from bench.devices.device import list_devices, search_dirs
from bench.estimate import power
from bench.estimate.crossval import (
    leave_models_out,
    leave_releases_out,
    leave_systems_out,
    procedure,
    release_key,
)
from bench.estimate.data import Data
from bench.estimate.design import board_key

#: The figures before this rework (commit 4795ab6, docs/estimator.md): one structure chosen
#: by looking at the leave-systems-out table itself, no intervals.
OLD = {"target": (12.5, 33.6), "all systems": (12.9, 40.6),
       "the four MLPerf Tiny models": (17.2, 53.2)}
TARGET = "Cortex-M, core and runtime seen in the rest (target)"


def device_datasheets(dirs: list[Path] | None = None) -> dict[str, dict[str, Any]]:
    """:func:`datasheet_power` of the device files in ``dirs`` and the usual folders."""
    devices, _ = list_devices(search_dirs(dirs))
    return datasheet_power(devices)


def datasheet_power(devices: list[Any]) -> dict[str, dict[str, Any]]:
    """Board key → the ``power`` block of a device file whose ``active_mw`` is a datasheet
    figure (its clock as ``active_at_mhz`` unless stated): what a user of that board has."""
    out: dict[str, dict[str, Any]] = {}
    for d in devices:
        p = d.power
        if p is None or p.active_mw is None or p.active_source != "datasheet" or not d.clock_mhz:
            continue
        out.setdefault(board_key(d.id), {**p.model_dump(),
                                         "active_at_mhz": p.active_at_mhz or d.clock_mhz})
    return out


def _energy(fold: pd.DataFrame, train: pd.DataFrame,
            datasheets: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Each held-out row's power (mW), its spread and source, as an estimate of its system
    would have them from ``train`` and ``datasheets`` alone."""
    block = power.table_block(train, datasheets)
    out = []
    for r in fold.itertuples(index=False):
        spec = power.PowerSpec.from_block(datasheets.get(r.board), float(r.clock_mhz))
        fig = power.resolve(spec, r.board, r.core, block)
        out.append((np.nan, np.nan, None) if fig is None else (fig.mw, fig.log_sd, fig.source))
    return pd.DataFrame(out, columns=["mw", "power_sd", "power_source"], index=fold.index)


def with_errors(res: pd.DataFrame, data: Data, by: str,
                datasheets: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """Held-out rows (folds of ``by``: ``group`` or ``family``) with ``ape``, ``inside``,
    energy figures (``power_source`` says where each power came from), ``seen`` (core and
    runtime in the training rows) and ``cortex_m``."""
    out = []
    powered = data.with_power()

    def key(rows: pd.DataFrame) -> pd.Series:
        return release_key(rows) if by == "release" else rows[by]

    for name, fold in res.groupby("fold", sort=False):
        train = data.rows[key(data.rows) != name]
        p = _energy(fold, powered[key(powered) != name], datasheets or {})
        mw = p["mw"].to_numpy(float)
        seen = fold["core"].isin(set(train["core"])) & fold["runtime"].isin(set(train["runtime"]))
        z = fold["z_low"].to_numpy(float), fold["z_high"].to_numpy(float)  # each row's
        low, high = power.energy_bounds(mw, fold["log_pred"].to_numpy(), z, fold["sd"].to_numpy(),
                                        p["power_sd"].to_numpy(float))
        out.append(fold.assign(pred_uj=fold["pred_ms"] * mw, low_uj=low, high_uj=high,
                               seen=seen, power_mw=mw, power_sd=p["power_sd"],
                               power_source=p["power_source"]))
    df = pd.concat(out, ignore_index=True)
    energy = df["energy_uj"]
    return df.assign(
        ape=(df["pred_ms"] / df["latency_ms"] - 1).abs() * 100,
        # where an energy error comes from: log(pred_uj / energy_uj) is their sum
        latency_log_error=np.log(df["pred_ms"] / df["latency_ms"]),
        power_log_error=np.log(df["power_mw"] * df["latency_ms"] / energy),
        inside=(df["latency_ms"] >= df["low_ms"]) & (df["latency_ms"] <= df["high_ms"]),
        energy_ape=(df["pred_uj"] / energy - 1).abs() * 100,
        energy_inside=((energy >= df["low_uj"]) & (energy <= df["high_uj"])).where(
            energy.notna() & df["pred_uj"].notna()),
        cortex_m=df["core"].str.startswith("cortex-m"))


def stats(ape: pd.Series, inside: pd.Series | None = None) -> dict[str, Any]:
    """n, median and p90 of absolute % errors, and the share inside the interval."""
    v = ape.dropna()
    if v.empty:
        return {"n": 0, "median": None, "p90": None, "coverage": None}
    cov = None if inside is None else inside.dropna()
    return {"n": int(len(v)), "median": round(float(v.median()), 1),
            "p90": round(float(v.quantile(0.9)), 1),
            "coverage": None if cov is None or cov.empty
            else round(float(cov.astype(float).mean()) * 100, 1)}


def summarise(lso: pd.DataFrame, lmo: pd.DataFrame, lro: pd.DataFrame | None = None
              ) -> dict[str, Any]:
    """The tables as data."""
    subsets = {TARGET: lso["cortex_m"] & lso["seen"],
               "Cortex-M, core or runtime unseen": lso["cortex_m"] & ~lso["seen"],
               "other cores": ~lso["cortex_m"], "all systems": lso["ape"].notna()}
    systems = (lso.groupby("group")
               .agg(core=("core", "first"), runtime=("runtime", "first"), rows=("ape", "size"),
                    seen=("seen", "first"), median_ape=("ape", "median"),
                    coverage=("inside", "mean"), energy_median_ape=("energy_ape", "median"),
                    release=("resolution", lambda r: ", ".join(sorted(set(r)))),
                    structure=("structure", "first"))
               .reset_index().rename(columns={"group": "system"}))
    systems["coverage"] = (systems["coverage"] * 100).round(0)
    return {
        "leave_systems_out": {
            name: {"systems": int(lso.loc[m, "group"].nunique()),
                   "latency": stats(lso.loc[m, "ape"], lso.loc[m, "inside"]),
                   "energy": stats(lso.loc[m, "energy_ape"], lso.loc[m, "energy_inside"])}
            for name, m in subsets.items()},
        "leave_systems_out_by_system": systems.round(1).to_dict(orient="records"),
        "latency_by_doubt": {
            "leave systems out": {str(d): stats(g["ape"], g["inside"])
                                  for d, g in lso.groupby("doubt", sort=True)},
            **({} if lro is None else {"leave releases out": {
                "all": stats(lro["ape"], lro["inside"]),
                **{str(d): stats(g["ape"], g["inside"])
                   for d, g in lro.groupby("doubt", sort=True)}}})},
        "energy_by_system": energy_by_system(lso),
        "energy_by_power_source": {
            str(src): {"systems": int(g["group"].nunique()),
                       "energy": stats(g["energy_ape"], g["energy_inside"])}
            for src, g in lso[lso["energy_ape"].notna()].groupby("power_source", sort=True)},
        "leave_models_out": {
            **{b: {"latency": stats(g["ape"], g["inside"]),
                   "cortex_m": stats(g.loc[g["cortex_m"], "ape"], g.loc[g["cortex_m"], "inside"]),
                   "structure": g["structure"].iloc[0]}
               for b, g in lmo.groupby("family")},
            **{name: {"latency": stats(lmo.loc[m, "ape"], lmo.loc[m, "inside"]),
                      "cortex_m": stats(lmo.loc[m & lmo["cortex_m"], "ape"],
                                        lmo.loc[m & lmo["cortex_m"], "inside"])}
               for name, m in _model_subsets(lmo).items()}},
    }


def energy_by_system(lso: pd.DataFrame) -> list[dict[str, Any]]:
    """Each held-out system with published energy: where its power came from, its energy
    error and coverage, and the signed median % by which its latency and its power were off
    (their product is the energy's): which of the two makes a miss."""
    e = lso[lso["energy_ape"].notna()]

    def off(v: pd.Series) -> float:
        return round((float(np.exp(v.median())) - 1) * 100, 1)

    return [{"system": str(g), "power_source": str(r["power_source"].iloc[0]),
             "rows": int(len(r)), "energy_median": round(float(r["energy_ape"].median()), 1),
             "coverage": round(float(r["energy_inside"].astype(float).mean()) * 100, 0),
             "latency_off": off(r["latency_log_error"]), "power_off": off(r["power_log_error"])}
            for g, r in e.groupby("group", sort=True)]


def _model_subsets(lmo: pd.DataFrame) -> dict[str, pd.Series]:
    four = lmo["family"].isin(BENCHMARKS)
    out = {"the four MLPerf Tiny models": four}
    if not four.all():
        out["beyond the four"] = ~four
        out["all models"] = lmo["ape"].notna()
    return out


def evaluate(data: Data, nested: bool = True, holdout: Data | None = None,
             datasheets: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Leave-systems-out and leave-one-model-out, nested (the procedure, structure choice and
    interval included, rerun on each training set, with ``holdout`` rows for its new-model
    interval) and — for comparison — with the structure the procedure picks on all the data
    (optimistic: chosen by looking at the held-out rows). ``datasheets`` (board key → a device
    file's power block, :func:`datasheet_power`) stand for what a user's device file states."""
    chosen = procedure(data, holdout=holdout)
    out: dict[str, Any] = {"structure_on_all_data": chosen.structure.to_json(),
                           "inner_scores": chosen.scores, "old": OLD}
    runs = [("nested", None)] if nested else []
    runs.append(("non_nested", chosen.structure))
    for name, structure in runs:
        lso = with_errors(leave_systems_out(data, structure, holdout=holdout), data, "group",
                          datasheets)
        lmo = with_errors(leave_models_out(data, structure, holdout=holdout), data, "family",
                          datasheets)
        lro = None
        if name == "nested":  # the by-release measure of the interval is the nested one
            lro = with_errors(leave_releases_out(data, structure, holdout=holdout), data,
                              "release", datasheets)
        out[name] = summarise(lso, lmo, lro)
    return out


def _pct(s: dict[str, Any]) -> list[str]:
    if s["median"] is None:
        return ["–", "–"]
    return [f"{s['median']:.1f} %", f"{s['p90']:.1f} %"]


def _cov(s: dict[str, Any]) -> str:
    return "–" if s.get("coverage") is None else f"{s['coverage']:.0f} %"


def render(report: dict[str, Any]) -> str:
    """The error and coverage tables as Markdown (what ``docs/estimator.md`` shows)."""
    main = report.get("nested") or report["non_nested"]
    label = "nested" if "nested" in report else "structure chosen on all data"
    systems = [[name, s["systems"], s["latency"]["n"], *_pct(s["latency"]), _cov(s["latency"]),
                s["energy"]["n"], *_pct(s["energy"]), _cov(s["energy"])]
               for name, s in main["leave_systems_out"].items()]
    models = [[name, s["latency"]["n"], *_pct(s["latency"]), _cov(s["latency"]),
               *_pct(s["cortex_m"]), _cov(s["cortex_m"])]
              for name, s in main["leave_models_out"].items()]
    lines = [f"Leave whole systems out ({label}; absolute % error, share inside the 80 % "
             f"interval):", "",
             textable.render(["held-out systems", "systems", "rows", "latency median",
                              "latency p90", "inside 80 %", "energy rows", "energy median",
                              "energy p90", "energy inside"], systems,
                             numeric=range(1, 10), style="markdown"), "",
             f"Leave each reference model out ({label}):", "",
             textable.render(["left-out model", "rows", "latency median", "latency p90",
                              "inside 80 %", "Cortex-M median", "Cortex-M p90",
                              "Cortex-M inside"], models, numeric=range(1, 8),
                             style="markdown")]
    doubts = main.get("latency_by_doubt") or {}
    rows = [[how, d, s["n"], *_pct(s), _cov(s)] for how, by in doubts.items()
            for d, s in by.items()]
    if rows:
        lines += ["", f"Latency by source of doubt (the interval's z is calibrated per source; "
                      f"{label}):", "",
                  textable.render(["held out", "source of doubt", "rows", "latency median",
                                   "latency p90", "inside 80 %"], rows, numeric=range(2, 6),
                                  style="markdown")]
    by_source = main.get("energy_by_power_source") or {}
    if by_source:
        rows = [[src, s["systems"], s["energy"]["n"], *_pct(s["energy"]), _cov(s["energy"])]
                for src, s in by_source.items()]
        lines += ["", f"Energy of held-out systems by where the power came from ({label}):", "",
                  textable.render(["power from", "systems", "rows", "energy median",
                                   "energy p90", "energy inside"], rows, numeric=range(1, 6),
                                  style="markdown")]
    by_system = main.get("energy_by_system") or []
    if by_system:
        rows = [[s["system"], s["power_source"], s["rows"], f"{s['energy_median']:.1f} %",
                 f"{s['coverage']:.0f} %", f"{s['latency_off']:+.1f} %",
                 f"{s['power_off']:+.1f} %"] for s in by_system]
        lines += ["", f"Where the energy error comes from, by held-out system (median signed "
                      f"% by which the latency and the power were off; {label}):", "",
                  textable.render(["system", "power from", "rows", "energy median",
                                   "energy inside", "latency off", "power off"], rows,
                                  numeric=range(2, 7), style="markdown")]
    if "nested" in report:
        lines += ["", "Old and new, side by side (median / p90 absolute % error; coverage):",
                  "", render_comparison(report)]
    return "\n".join(lines)


def render_comparison(report: dict[str, Any]) -> str:
    """Old (before releases and intervals), new non-nested and new nested figures."""
    def cell(s: dict[str, Any]) -> str:
        c = "" if s.get("coverage") is None else f", {s['coverage']:.0f} % inside"
        return f"{s['median']:.1f} / {s['p90']:.1f} %{c}"

    rows = []
    for name, old_key, path in ((TARGET, "target", ("leave_systems_out", TARGET)),
                                ("all systems", "all systems", ("leave_systems_out",
                                                                "all systems")),
                                ("leave one model out, the four MLPerf Tiny models",
                                 "the four MLPerf Tiny models",
                                 ("leave_models_out", "the four MLPerf Tiny models"))):
        new = [report[k][path[0]][path[1]]["latency"] for k in ("non_nested", "nested")]
        old = OLD[old_key]
        rows.append([name, f"{old[0]:.1f} / {old[1]:.1f} % (no interval)", cell(new[0]),
                     cell(new[1])])
    return textable.render(["held out", "old (4795ab6, not nested)",
                            "new, structure chosen on all data", "new, nested (honest)"],
                           rows, style="markdown")


def render_systems(report: dict[str, Any]) -> str:
    """The per-system table of the nested leave-systems-out run."""
    main = report.get("nested") or report["non_nested"]
    rows = [[s["system"], s["core"], s["runtime"], s["rows"], "yes" if s["seen"] else "no",
             s["release"], f"{s['median_ape']:.1f} %",
             "–" if pd.isna(s["coverage"]) else f"{s['coverage']:.0f} %",
             "–" if pd.isna(s["energy_median_ape"]) else f"{s['energy_median_ape']:.1f} %"]
            for s in main["leave_systems_out_by_system"]]
    return textable.render(["system", "core", "runtime", "rows", "seen", "release effect",
                            "latency", "inside 80 %", "energy"], rows,
                           numeric={3, 6, 7, 8}, style="markdown")


def coverage_of(df: pd.DataFrame) -> float:
    """Share of rows whose published latency is inside their interval."""
    return float(np.mean((df["latency_ms"] >= df["low_ms"]) & (df["latency_ms"] <= df["high_ms"])))
