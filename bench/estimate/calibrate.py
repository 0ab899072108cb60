"""Fit the cost model's coefficients to published MLPerf Tiny latencies, and measure its error.

The fit is a regularised (maximum a posteriori) least squares on log latency: each parameter of
:mod:`bench.estimate.model` has a Gaussian prior (:data:`PRIORS`), the data term is the squared
log error of every usable row. It starts from the priors and is deterministic.

Errors are measured two ways (:func:`leave_systems_out`, :func:`leave_models_out`): hold out a
whole system (a board with its core, clock and runtime, all its submissions and variants) and
predict it from the rest; hold out one reference model and predict it from the other three.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import textable
from bench.cores import CORES
from bench.estimate.analysis import OP_CLASSES, Analysis
from bench.estimate.model import (
    NOMINAL_DTYPE,
    RUNTIME_CLASSES,
    SCHEMA,
    SOFT_FLOAT,
    dtype_class,
)

log = logging.getLogger(__name__)

BENCHMARKS = ("kws", "vww", "ic", "ad")
#: Inference runtimes (the CSV's ``stack``) the model covers; others run on accelerators
#: (syntiant, hls4ml on an FPGA) or are unnamed (``other``).
RUNTIMES = ("tflm", "x-cube-ai", "microtvm", "plumerai", "bosch-hale", "onnc", "leip")
#: name → (prior mean, prior standard deviation), in log units except ``beta``.
PRIORS: dict[str, tuple[float, float]] = {
    "c0": (math.log(2.0), 2.0),  # conv cycles/MAC on a 1-MAC/cycle core: weak prior
    "beta": (1.0, 0.3),  # cycles/MAC scale as simd_macs_per_cycle ** -beta
    "overhead": (math.log(1000.0), 1.0),  # cycles per operator invocation
    "dtype.float32": (math.log(2.5), 0.5),
    "class.depthwise": (math.log(2.0), 0.7),
    "class.fc": (math.log(1.5), 0.7),
    "class.elementwise": (math.log(4.0), 1.0),  # per element
    "class.other": (math.log(4.0), 1.0),
    "trend": (0.0, 0.3),  # per MLPerf Tiny round: runtimes get faster
    "runtime.*": (0.0, 0.7),
    "core.*": (0.0, 0.3),
    "runtime_class.*": (0.0, 0.3),
    "trend.*": (0.0, 0.1),
}


def _prior(name: str) -> tuple[float, float]:
    return PRIORS.get(name) or PRIORS[name.split(".")[0] + ".*"]


def core_name(raw: str) -> str | None:
    """``bench.cores`` name of the CSV's core ("Cortex-M4F" → ``cortex-m4f``), or None."""
    name = raw.split(" (")[0].strip().lower().replace("+", "plus").replace(" ", "-")
    return name if name in CORES and CORES[name].simd_macs_per_cycle > 0 else None


def _round_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", str(version))) or (0,)


def load_results(csv: Path | str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Usable rows (core, runtime, benchmark, dtype, clock, round, system group, latency,
    energy) and the number of rows skipped, by reason."""
    df = pd.read_csv(csv)
    missing = {"system", "core", "clock_mhz", "stack", "benchmark", "latency_ms", "version",
               "division", "board"} - set(df.columns)
    if missing:
        raise ValueError(f"{csv}: missing columns {', '.join(sorted(missing))}")
    skipped: dict[str, int] = {}

    def drop(mask: pd.Series, reason: str) -> pd.DataFrame:
        if int(mask.sum()):
            skipped[reason] = skipped.get(reason, 0) + int(mask.sum())
        return df[~mask]

    df = drop(~df["benchmark"].isin(BENCHMARKS) | df["latency_ms"].isna()
              | df["clock_mhz"].isna(), "no latency, clock or modelled benchmark (sww)")
    df = drop(df["division"] != "closed", "open division (the model may differ)")
    cores = df["core"].map(core_name)
    for raw in sorted(df.loc[cores.isna(), "core"].unique()):
        df = drop(df["core"] == raw, f"core not mapped to bench.cores: {raw}")
    df = df.assign(core_n=df["core"].map(core_name))
    for stack in sorted(set(df["stack"]) - set(RUNTIMES)):
        df = drop(df["stack"] == stack, f"runtime not modelled: {stack}")
    notes = df["notes"].fillna("") if "notes" in df else pd.Series("", index=df.index)
    floaty = df["system"].str.contains("float", case=False) | notes.str.contains("_fp32")
    board = (df["board"].fillna(df["system"]).str.lower()
             .str.replace(r"[-_ ]?[qp]$", "", regex=True).str.replace(r"[^a-z0-9]", "", regex=True))
    rows = pd.DataFrame({
        "system": df["system"], "version": df["version"],
        "group": board + "@" + df["clock_mhz"].map("{:g}MHz".format) + "/" + df["stack"],
        "core": df["core_n"], "runtime": df["stack"], "benchmark": df["benchmark"],
        "dtype": np.where(floaty, "float32", "int8"), "clock_mhz": df["clock_mhz"].astype(float),
        "latency_ms": df["latency_ms"].astype(float),
        "energy_uj": df["energy_uj"].astype(float) if "energy_uj" in df else np.nan,
    }).reset_index(drop=True)
    return rows, skipped


# --- the vectorised model ------------------------------------------------------------------


@dataclass
class _Design:
    """Rows as index arrays into a parameter vector (index ``len(names)`` is a constant 0)."""

    names: list[str]
    mu: np.ndarray
    sd: np.ndarray

    @classmethod
    def for_rows(cls, rows: pd.DataFrame) -> _Design:
        names = ["c0", "beta", "overhead", "dtype.float32", "trend"]
        names += [f"class.{c}" for c in OP_CLASSES[1:]]
        runtimes, cores = sorted(rows["runtime"].unique()), sorted(rows["core"].unique())
        names += [f"runtime.{r}" for r in runtimes] + [f"core.{c}" for c in cores]
        names += [f"runtime_class.{r}.{c}" for r in runtimes for c in RUNTIME_CLASSES]
        names += [f"trend.{r}" for r in runtimes]
        pri = np.array([_prior(n) for n in names])
        return cls(names, pri[:, 0], pri[:, 1])

    def arrays(self, rows: pd.DataFrame, feats: dict[str, tuple[np.ndarray, int]],
               ref_round: int) -> dict[str, np.ndarray]:
        at = {n: i for i, n in enumerate(self.names)}
        zero = len(self.names)

        def idx(names: list[str]) -> np.ndarray:
            return np.array([at.get(n, zero) for n in names], dtype=int)

        rt, core = list(rows["runtime"]), list(rows["core"])
        simd = np.array([CORES[c].simd_macs_per_cycle for c in core])
        dtypes = [dtype_class(d) for d in rows["dtype"]]
        const = np.array([(0.0 if CORES[c].fpu else SOFT_FLOAT) if d == "float32"
                          else NOMINAL_DTYPE.get(d, 0.0)
                          for c, d in zip(core, dtypes, strict=True)])
        return {
            "rt": idx([f"runtime.{r}" for r in rt]), "core": idx([f"core.{c}" for c in core]),
            "trend_rt": idx([f"trend.{r}" for r in rt]),
            "rtcls": np.stack([idx([f"runtime_class.{r}.{c}" for r in rt]) for c in OP_CLASSES],
                              axis=1),
            "cls": idx([f"class.{c}" for c in OP_CLASSES]),
            "log_simd": np.log(simd), "f32": np.array([d == "float32" for d in dtypes], float),
            "const": const, "offset": (rows["round"].to_numpy() - ref_round).astype(float),
            "macs": np.stack([feats[b][0] for b in rows["benchmark"]]).astype(float),
            "nops": np.array([feats[b][1] for b in rows["benchmark"]], float),
            "log_khz": np.log(rows["clock_mhz"].to_numpy() * 1e3),
            "fixed": idx(["c0", "beta", "overhead", "dtype.float32", "trend"]),
        }

    @staticmethod
    def log_ms(theta: np.ndarray, a: dict[str, np.ndarray]) -> np.ndarray:
        t = np.append(theta, 0.0)
        c0, beta, ovh, f32, trend = t[a["fixed"]]
        s = (c0 + t[a["rt"]] + t[a["core"]] - beta * a["log_simd"] + a["f32"] * f32 + a["const"]
             + a["offset"] * (trend + t[a["trend_rt"]]))
        k = t[a["cls"]][None, :] + t[a["rtcls"]]
        cyc = (a["macs"] * np.exp(s[:, None] + k)).sum(axis=1) + a["nops"] * np.exp(ovh)
        return np.log(cyc) - a["log_khz"]


def features(analyses: dict[str, Analysis]) -> dict[str, tuple[np.ndarray, int]]:
    """Per benchmark: MACs per op class (``OP_CLASSES`` order) and the number of operators."""
    return {b: (np.array([a.macs_by_class()[c] for c in OP_CLASSES], float), len(a.ops))
            for b, a in analyses.items()}


def _with_rounds(rows: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    rounds = {v: i for i, v in enumerate(sorted(rows["version"].unique(), key=_round_key))}
    return rows.assign(round=rows["version"].map(rounds)), rounds


@dataclass(frozen=True)
class Fit:
    params: dict[str, float]
    runtime_round: dict[str, int]
    ref_round: int
    design: _Design

    def predict_ms(self, rows: pd.DataFrame, feats: dict[str, tuple[np.ndarray, int]]
                   ) -> np.ndarray:
        d = self.design
        theta = np.array([self.params[n] for n in d.names])
        return np.exp(d.log_ms(theta, d.arrays(rows, feats, self.ref_round)))


def fit(rows: pd.DataFrame, feats: dict[str, tuple[np.ndarray, int]], ref_round: int) -> Fit:
    """MAP fit on ``rows`` (with a ``round`` column); deterministic (starts at the priors)."""
    from scipy.optimize import least_squares

    if rows.empty:
        raise ValueError("no usable rows to fit")
    d = _Design.for_rows(rows)
    arrays = d.arrays(rows, feats, ref_round)
    y = np.log(rows["latency_ms"].to_numpy())

    def residuals(theta: np.ndarray) -> np.ndarray:
        return np.concatenate([d.log_ms(theta, arrays) - y, (theta - d.mu) / d.sd])

    result = least_squares(residuals, d.mu.copy(), method="trf", x_scale=1.0)
    params = {n: float(v) for n, v in zip(d.names, result.x, strict=True)}
    latest = rows.groupby("runtime")["round"].max()
    return Fit(params, {r: int(v) for r, v in latest.items()}, ref_round, d)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def calibrate(csv: Path | str, models: dict[str, Path]) -> dict[str, Any]:
    """The coefficient table fitted on every usable row of ``csv`` (a JSON-ready dict)."""
    from bench.estimate.analysis import analyse

    csv = Path(csv)
    absent = [b for b in BENCHMARKS if b not in models]
    if absent:
        raise ValueError(f"missing --model for {', '.join(absent)} (give kws=PATH …)")
    analyses = {b: analyse(Path(p).read_bytes(), str(p)) for b, p in models.items()}
    rows, skipped = load_results(csv)
    rows, rounds = _with_rounds(rows)
    ref = max(rounds.values())
    result = fit(rows, features(analyses), ref)
    pred = result.predict_ms(rows, features(analyses))
    ape = np.abs(pred / rows["latency_ms"].to_numpy() - 1) * 100
    digest = hashlib.sha256(csv.read_bytes())
    for b in sorted(models):
        digest.update(Path(models[b]).read_bytes())
    log.info("calibrated on %d rows (%d skipped)", len(rows), sum(skipped.values()))
    systems = (rows.groupby("group")
               .agg(core=("core", "first"), runtime=("runtime", "first"),
                    clock_mhz=("clock_mhz", "first"), rows=("latency_ms", "size"),
                    versions=("version", lambda v: sorted(set(v), key=_round_key)))
               .reset_index().rename(columns={"group": "system"}))
    with_energy = rows.dropna(subset=["energy_uj"])
    power = (with_energy["energy_uj"] / with_energy["latency_ms"] / with_energy["clock_mhz"]
             ).groupby(with_energy["core"]).median()
    return {
        "schema": SCHEMA, "kind": "edgebench estimator coefficients",
        "fitted": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": {"results": csv.name, "sha256": digest.hexdigest(),
                 "results_sha256": _sha256(csv),
                 "models": {b: {"file": Path(p).name, "sha256": _sha256(Path(p)),
                                "macs": analyses[b].macs} for b, p in sorted(models.items())},
                 "rows_used": len(rows), "rows_skipped": skipped},
        "formula": "log cycles/MAC = c0 + runtime + core - beta*log(simd) + class + "
                   "runtime_class + dtype + (round - ref)*(trend + trend.runtime); "
                   "cycles = sum MACs*cycles/MAC + ops*exp(overhead)",
        "priors": {k: list(v) for k, v in PRIORS.items()},
        "parameters": dict(sorted(result.params.items())),
        "rounds": rounds, "runtime_round": result.runtime_round,
        "power_mw_per_mhz": {c: round(float(v), 4) for c, v in power.items()},
        "in_sample": {"median_ape": round(float(np.median(ape)), 2),
                      "p90_ape": round(float(np.quantile(ape, 0.9)), 2)},
        "systems": systems.to_dict(orient="records"),
    }


# --- honest error ------------------------------------------------------------------------------


def _prepare(csv: Path | str, models: dict[str, Path]
             ) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, int]], int]:
    from bench.estimate.analysis import analyse

    rows, _ = load_results(csv)
    rows, rounds = _with_rounds(rows)
    analyses = {b: analyse(Path(p).read_bytes(), str(p)) for b, p in models.items()}
    return rows, features(analyses), max(rounds.values())


def _power(train: pd.DataFrame) -> pd.Series:
    e = train.dropna(subset=["energy_uj"])
    return (e["energy_uj"] / e["latency_ms"] / e["clock_mhz"]).groupby(e["core"]).median()


def leave_systems_out(rows: pd.DataFrame, feats: dict[str, tuple[np.ndarray, int]],
                      ref_round: int, groups: list[str] | None = None) -> pd.DataFrame:
    """Predict every system (group) from a fit on all the others.

    Energy of a held-out row = predicted latency × (median mW/MHz of the same core in the
    other systems' energy runs) × its clock: what a typical power figure for that core gives.
    """
    out = []
    for group in groups or sorted(rows["group"].unique()):
        train, test = rows[rows["group"] != group], rows[rows["group"] == group]
        pred = fit(train, feats, ref_round).predict_ms(test, feats)
        power = _power(train)
        mw = test["core"].map(power).to_numpy() * test["clock_mhz"].to_numpy()
        seen = (test["core"].iloc[0] in set(train["core"])
                and test["runtime"].iloc[0] in set(train["runtime"]))
        out.append(test.assign(pred_ms=pred, pred_uj=pred * mw, seen=seen))
    return _with_errors(pd.concat(out))


def leave_models_out(rows: pd.DataFrame, feats: dict[str, tuple[np.ndarray, int]],
                     ref_round: int) -> pd.DataFrame:
    """Predict every row of each reference model from a fit on the other three models."""
    out = []
    for bench in BENCHMARKS:
        train, test = rows[rows["benchmark"] != bench], rows[rows["benchmark"] == bench]
        if test.empty:
            continue
        out.append(test.assign(pred_ms=fit(train, feats, ref_round).predict_ms(test, feats),
                               pred_uj=np.nan, seen=True))
    return _with_errors(pd.concat(out))


def _with_errors(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(ape=(df["pred_ms"] / df["latency_ms"] - 1).abs() * 100,
                     energy_ape=(df["pred_uj"] / df["energy_uj"] - 1).abs() * 100,
                     cortex_m=df["core"].str.startswith("cortex-m"))


def _stats(values: pd.Series) -> dict[str, Any]:
    v = values.dropna()
    if v.empty:
        return {"n": 0, "median": None, "p90": None}
    return {"n": int(len(v)), "median": round(float(v.median()), 1),
            "p90": round(float(v.quantile(0.9)), 1)}


def summarise(lso: pd.DataFrame, lmo: pd.DataFrame) -> dict[str, Any]:
    """Both error tables as data (absolute percentage errors: median, 90th percentile)."""
    subsets = {
        "Cortex-M, core and runtime seen in the rest (target)": lso["cortex_m"] & lso["seen"],
        "Cortex-M, core or runtime unseen": lso["cortex_m"] & ~lso["seen"],
        "other cores": ~lso["cortex_m"],
        "all systems": lso["cortex_m"] | ~lso["cortex_m"],
    }
    systems = (lso.groupby("group")
               .agg(core=("core", "first"), runtime=("runtime", "first"), rows=("ape", "size"),
                    seen=("seen", "first"), median_ape=("ape", "median"),
                    energy_median_ape=("energy_ape", "median"))
               .round(1).reset_index().rename(columns={"group": "system"}))
    return {
        "leave_systems_out": {
            name: {"systems": int(lso.loc[m, "group"].nunique()),
                   "latency": _stats(lso.loc[m, "ape"]),
                   "energy": _stats(lso.loc[m, "energy_ape"])} for name, m in subsets.items()},
        "leave_systems_out_by_system": systems.to_dict(orient="records"),
        "leave_models_out": {
            **{b: {"latency": _stats(lmo.loc[lmo["benchmark"] == b, "ape"]),
                   "cortex_m": _stats(lmo.loc[(lmo["benchmark"] == b) & lmo["cortex_m"], "ape"])}
               for b in BENCHMARKS},
            "all four": {"latency": _stats(lmo["ape"]),
                         "cortex_m": _stats(lmo.loc[lmo["cortex_m"], "ape"])}},
    }


def evaluate(csv: Path | str, models: dict[str, Path]) -> dict[str, Any]:
    """Leave-systems-out and leave-models-out errors of the model fitted on ``csv``."""
    rows, feats, ref = _prepare(csv, models)
    return summarise(leave_systems_out(rows, feats, ref), leave_models_out(rows, feats, ref))


def render(summary: dict[str, Any]) -> str:
    """Both error tables as Markdown (what ``docs/estimator.md`` shows)."""
    def pct(s: dict[str, Any]) -> list[str]:
        return ["–", "–"] if s["median"] is None else [f"{s['median']:.1f} %", f"{s['p90']:.1f} %"]

    systems = [[name, s["systems"], s["latency"]["n"], *pct(s["latency"]), s["energy"]["n"],
                *pct(s["energy"])] for name, s in summary["leave_systems_out"].items()]
    models = [[name, s["latency"]["n"], *pct(s["latency"]), *pct(s["cortex_m"])]
              for name, s in summary["leave_models_out"].items()]
    return "\n".join([
        "Leave whole systems out (absolute percentage error):", "",
        textable.render(["held-out systems", "systems", "rows", "latency median", "latency p90",
                         "energy rows", "energy median", "energy p90"], systems,
                        numeric=range(1, 8), style="markdown"), "",
        "Leave each reference model out (fit on the other three):", "",
        textable.render(["left-out model", "rows", "latency median", "latency p90",
                         "Cortex-M median", "Cortex-M p90"], models, numeric=range(1, 6),
                        style="markdown")])
