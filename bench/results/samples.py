"""Raw timing samples of a cell: per-invoke durations per worker process, kept in the run folder
beside the records (``samples/<cell>.json``) so percentiles and comparisons can be recomputed.

Up to :data:`MAX_RAW` values a process keeps them all; above, a faithful compact form: the first
:data:`KEEP_FIRST` values plus a histogram of all of them on fixed log-spaced bins.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import files

FOLDER = "samples"
MAX_RAW = 100_000
KEEP_FIRST = 10_000
#: Histogram bins: 20 per decade from 1 ns to 1000 s.
BIN_EDGES_NS = np.logspace(0, 12, 12 * 20 + 1)


@dataclass(frozen=True)
class Samples:
    """Durations in ns, one array per worker process (all values, or the first ones kept)."""

    processes: list[np.ndarray]
    counts: list[int]  # how many invokes each process timed (≥ len of its array)

    @property
    def all(self) -> np.ndarray:
        return np.concatenate(self.processes) if self.processes else np.zeros(0)

    @property
    def complete(self) -> bool:
        return all(len(p) == n for p, n in zip(self.processes, self.counts, strict=True))

    def process_medians_ms(self) -> list[float]:
        return [float(np.median(p)) / 1e6 for p in self.processes if len(p)]

    def to_json(self) -> dict[str, Any]:
        out = []
        for values in self.processes:
            v = np.asarray(values, dtype=np.int64)
            if len(v) <= MAX_RAW:
                out.append({"n": int(len(v)), "values": v.tolist()})
            else:
                counts, _ = np.histogram(v, BIN_EDGES_NS)
                nonzero = np.flatnonzero(counts)
                out.append({"n": int(len(v)), "values": v[:KEEP_FIRST].tolist(),
                            "histogram": {"bins_per_decade": 20, "bin": nonzero.tolist(),
                                          "count": counts[nonzero].tolist()}})
        return {"unit": "ns", "processes": out}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Samples:
        processes = data.get("processes")
        if data.get("unit") != "ns" or not isinstance(processes, list):
            raise ValueError("not a samples file (expected unit ns and a list of processes)")
        arrays, counts = [], []
        for p in processes:
            values = np.asarray(p["values"], dtype=np.int64)
            arrays.append(values)
            counts.append(int(p.get("n", len(values))))
        return cls(arrays, counts)


def file_name(cell_id: str) -> str:
    """A file-name-safe name for a cell's samples (``m/int8@host`` → ``m_int8_host.json``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", cell_id).strip("_") + ".json"


def save(run_path: Path, cell_id: str, samples: Samples) -> str:
    """Write a cell's samples into the run folder; the path relative to it (for the record)."""
    path = Path(run_path) / FOLDER / file_name(cell_id)
    files.write_atomic(path, json.dumps(samples.to_json()).encode(), Path(run_path).parent.parent)
    return f"{FOLDER}/{path.name}"


def save_trace(run_path: Path, cell_id: str, trace: dict[str, Any]) -> str:
    """Write an energy-mode cell's raw current trace beside its samples
    (``samples/<cell>.trace.json``); the path relative to the run folder."""
    folder = Path(run_path) / FOLDER
    folder.mkdir(exist_ok=True)
    path = folder / file_name(cell_id).replace(".json", ".trace.json")
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(trace))
    tmp.replace(path)
    return f"{FOLDER}/{path.name}"


def load_trace(run_path: Path, relative: str, limit: int = 256 << 20) -> Any:
    """A saved trace's JSON (parse it with :func:`bench.monitors.base.traces_from_json`);
    ValueError when missing, too large or outside the run folder."""
    path = (Path(run_path) / relative).resolve()
    if Path(run_path).resolve() not in path.parents:
        raise ValueError(f"trace path {relative!r} leaves the run folder")
    try:
        if path.stat().st_size > limit:
            raise ValueError(f"larger than {limit >> 20} MiB")
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read the energy trace: {e}") from None


def load(run_path: Path, relative: str) -> Samples:
    """A cell's samples from the run folder; ValueError when missing or malformed."""
    path = (Path(run_path) / relative).resolve()
    if Path(run_path).resolve() not in path.parents:
        raise ValueError(f"samples path {relative!r} leaves the run folder")
    try:
        return Samples.from_json(json.loads(path.read_bytes()))
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: cannot read samples: {e}") from None
