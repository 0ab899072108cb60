"""Calibration rows: published MLPerf Tiny results (CSV) and the user's own records, as one
frame, with the workloads of the models they ran.

A row: ``system``, ``group`` (the unit held out together: a board with its clock and runtime),
``version`` (MLPerf Tiny round; None for records), ``core``, ``runtime``, ``release``
(normalised, or None), ``slot`` (its release effect), ``benchmark`` (the workload's key),
``dtype``, ``clock_mhz``, ``latency_ms``, ``energy_uj``, ``board`` (a device measured by the
user, else None), ``source`` and ``voltage_v`` (the supply of an energy figure, when known).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.devices.cores import CORES
from bench.devices.releases import Resolution, normalise, resolve, round_key, slot_name
from bench.estimate.analysis import analyse
from bench.estimate.design import Query, Workload, board_key

#: Inference runtimes (the CSV's ``stack``) the model covers; others run on accelerators
#: (syntiant, hls4ml on an FPGA) or are unnamed (``other``).
RUNTIMES = ("tflm", "x-cube-ai", "microtvm", "plumerai", "bosch-hale", "onnc", "leip")
#: How the CSV's ``processor`` names an accelerator beside the CPU ("Arm Cortex-M33 … + accel:
#: DSP Co-processor"): such a system's latency is not its core's, whatever its core and stack.
ACCELERATOR = r"\+\s*accel:"
COLUMNS = ["system", "group", "version", "core", "runtime", "release", "slot", "config",
           "benchmark", "family", "dtype", "clock_mhz", "latency_ms", "energy_uj", "board",
           "source", "voltage_v"]
#: Build configurations a submission's system name states (``…_int8_min_ram``), each with a
#: fitted factor; an estimate is for the default build.
CONFIGS = {"min_ram": r"min_ram", "max_performance": r"max_performance",
           "native": r"MICROTVM-NATIVE"}


@dataclass
class Data:
    """Rows to fit or evaluate on, the workload of each ``benchmark`` key, and what was left
    out (reason → rows)."""

    rows: pd.DataFrame
    workloads: dict[str, Workload]
    skipped: dict[str, int] = field(default_factory=dict)
    #: power measured without a latency to fit (energy records): ``group``, ``board``,
    #: ``core``, ``family``, ``clock_mhz``, ``voltage_v``, ``source``, ``power_mw``
    power_only: pd.DataFrame | None = None

    def with_power(self) -> pd.DataFrame:
        """The rows and the power-only rows: what :mod:`bench.estimate.power` reads."""
        if self.power_only is None or self.power_only.empty:
            return self.rows
        return pd.concat([self.rows, self.power_only], ignore_index=True)

    @property
    def rounds(self) -> dict[str, int]:
        versions = sorted({v for v in self.rows["version"] if isinstance(v, str)}, key=round_key)
        return {v: i for i, v in enumerate(versions)}

    def subset(self, mask: pd.Series | np.ndarray) -> Data:
        kept = self.rows[np.asarray(mask)].reset_index(drop=True)
        power = self.power_only
        if power is not None:  # a power-only row follows its system
            power = power[power["group"].isin(set(kept["group"]))].reset_index(drop=True)
        return Data(kept, self.workloads, self.skipped, power)

    def __add__(self, other: Data) -> Data:
        skipped = dict(self.skipped)
        for k, v in other.skipped.items():
            skipped[k] = skipped.get(k, 0) + v
        power = [p for p in (self.power_only, other.power_only) if p is not None]
        return Data(pd.concat([self.rows, other.rows], ignore_index=True),
                    {**self.workloads, **other.workloads}, skipped,
                    pd.concat(power, ignore_index=True) if power else None)


def core_name(raw: str) -> str | None:
    """``bench.devices.cores`` name of the CSV's core ("Cortex-M4F" → ``cortex-m4f``), or None."""
    name = raw.split(" (")[0].strip().lower().replace("+", "plus").replace(" ", "-")
    return name if name in CORES and CORES[name].simd_macs_per_cycle > 0 else None


def load_results(csv: Path | str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Usable rows of a results CSV and the number of rows skipped, by reason."""
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

    df = drop(df["latency_ms"].isna() | df["clock_mhz"].isna(),
              "no latency or clock (the streaming wake word rows: power only)")
    df = drop(df["division"] != "closed", "open division (the model may differ)")
    if "memory" in df:
        df = drop(df["memory"].fillna("on-chip") != "on-chip",
                  "weights or activations in external memory (not modelled)")
    cores = df["core"].map(core_name)
    for raw in sorted(df.loc[cores.isna(), "core"].unique()):
        df = drop(df["core"] == raw, f"core not mapped to bench.devices.cores: {raw}")
    df = df.assign(core_n=df["core"].map(core_name))
    for stack in sorted(set(df["stack"]) - set(RUNTIMES)):
        df = drop(df["stack"] == stack, f"runtime not modelled: {stack}")
    if "processor" in df:
        df = drop(df["processor"].fillna("").str.contains(ACCELERATOR, case=False),
                  "an accelerator beside the core runs inference (not modelled)")
    notes = df["notes"].fillna("") if "notes" in df else pd.Series("", index=df.index)
    floaty = df["system"].str.contains("float", case=False) | notes.str.contains("_fp32")
    board = df["board"].fillna(df["system"]).map(board_key)
    software = df["software"] if "software" in df else pd.Series(None, index=df.index)
    release = [normalise(s) if isinstance(s, str) else None for s in software]
    rounds = [v if isinstance(v, str) and v else None for v in df["version"]]
    family = df["family"] if "family" in df else df["benchmark"]
    config = [next((c for c, pat in CONFIGS.items() if re.search(pat, name)), None)
              for name in df["system"]]
    rows = pd.DataFrame({
        "system": df["system"], "version": rounds,
        "group": board + "@" + df["clock_mhz"].map("{:g}MHz".format) + "/" + df["stack"],
        "core": df["core_n"], "runtime": df["stack"], "release": release,
        "slot": [slot_name(r, v) if r or v else None for r, v in zip(release, rounds,
                                                                     strict=True)],
        "config": config, "benchmark": df["benchmark"], "family": family,
        "dtype": np.where(floaty, "float32", "int8"), "clock_mhz": df["clock_mhz"].astype(float),
        "latency_ms": df["latency_ms"].astype(float),
        "energy_uj": df["energy_uj"].astype(float) if "energy_uj" in df else np.nan,
        "board": board, "source": "results",
        "voltage_v": df["voltage_v"].astype(float) if "voltage_v" in df else np.nan,
    }).reset_index(drop=True)
    return rows[COLUMNS], skipped


def results_data(csv: Path | str | list[Path], models: dict[str, Path]) -> Data:
    """The usable rows of ``csv`` whose benchmark has a model in ``models`` (rows of the
    others are skipped with that reason), with the models' workloads."""

    frames, skipped = [], {}
    for one in csv if isinstance(csv, list) else [csv]:
        part, why = load_results(one)
        frames.append(part)
        for k, v in why.items():
            skipped[k] = skipped.get(k, 0) + v
    rows = pd.concat(frames, ignore_index=True)
    for bench in sorted(set(rows["benchmark"]) - set(models)):
        n = int((rows["benchmark"] == bench).sum())
        skipped[f"no --model for benchmark {bench}"] = n
    rows = rows[rows["benchmark"].isin(models)].reset_index(drop=True)
    workloads = {b: Workload.from_analysis(analyse(Path(p).read_bytes(), str(p)))
                 for b, p in models.items() if b in set(rows["benchmark"])}
    return Data(rows, workloads, skipped)


def queries(data: Data, slots: dict[str, list], boards: set[str] | None = None
            ) -> list[Query]:
    """Each row as a :class:`Query` against ``slots`` (the training set's): its own release
    effect when the slot is known, else the nearest (see :func:`releases.resolve`). A row's
    ``board`` counts only when it is in ``boards`` (boards with their own effect)."""
    out: list[Query] = []
    cache: dict[tuple, Resolution] = {}
    for r in data.rows.itertuples(index=False):
        version = r.version if isinstance(r.version, str) else None
        release = r.release if isinstance(r.release, str) else None
        key = (r.runtime, release, version)
        if key not in cache:
            cache[key] = resolve(slots.get(r.runtime, []), release, version)
        board = r.board if isinstance(r.board, str) and (boards is None or r.board in boards) \
            else None
        workload = data.workloads[r.benchmark]
        out.append(Query(r.core, r.runtime, float(r.clock_mhz), cache[key],
                         workload if r.dtype == "model" else workload.as_dtype(r.dtype), board,
                         r.config if isinstance(r.config, str) else None))
    return out
