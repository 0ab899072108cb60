"""Calibration rows from the user's own records: any model, any board the serial runner (or
an emulated board) measured.

A record counts when it is ``ok`` and its ``latency_p50`` was measured on the device
(method ``board``, or ``emulated`` — flagged in the row's ``source``). Its device file gives
core, clock, runtime and release; its model is found by the record's ``artifact_sha256``
among the ``.tflite`` files in the cache and any folders given. Everything else is skipped,
with the reason counted.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from bench.devices.device import find_device
from bench.devices.releases import normalise
from bench.estimate.analysis import analyse
from bench.estimate.data import COLUMNS, Data, board_key
from bench.estimate.design import Workload
from bench.results.store import Run

#: Latency methods a record may calibrate with (never an estimate or an x86 interpreter).
METHODS = {"board": "records (board)", "emulated": "records (emulated board)"}


def record_files(paths: list[Path]) -> list[Path]:
    """``records.jsonl`` files: a run folder, a folder of runs (searched), or the file."""
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_file():
            found.append(p)
        elif (p / "records.jsonl").is_file():
            found.append(p / "records.jsonl")
        elif p.is_dir():
            found += sorted(p.rglob("records.jsonl"))
        else:
            raise FileNotFoundError(f"--records {p}: no such run, folder or file")
    return list(dict.fromkeys(found))


def _artifacts(dirs: list[Path]) -> dict[str, Path]:
    """SHA-256 → path of every ``.tflite`` under ``dirs``."""
    out: dict[str, Path] = {}
    for d in dirs:
        for path in sorted(Path(d).rglob("*.tflite")) if Path(d).is_dir() else []:
            out.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), path)
    return out


def records_data(paths: list[Path], device_dirs: list[Path], artifact_dirs: list[Path]
                 ) -> Data:
    """Rows (and workloads) of the usable records under ``paths``."""

    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    artifacts = _artifacts(artifact_dirs)
    workloads: dict[str, Workload] = {}
    rows = []
    for file in record_files(paths):
        for r in Run(file.parent.parent.name, file.parent.name, file.parent).records():
            m = r.metrics.get("latency_p50")
            if r.status != "ok" or m is None:
                skip("not ok, or no latency_p50")
                continue
            if m.method not in METHODS:
                skip(f"latency_p50 method {m.method!r} (only board or emulated calibrate)")
                continue
            try:
                device = find_device(r.device, device_dirs)
            except (LookupError, ValueError) as e:
                skip(f"device file not found or invalid: {str(e).split(' (')[0]}")
                continue
            if device.is_host or not device.clock_mhz:
                skip(f"device {device.id}: a host or a device without clock_mhz")
                continue
            path = artifacts.get(r.artifact_sha256 or "")
            if path is None:
                skip("model file not found by its SHA-256 (give --artifacts DIR)")
                continue
            key = f"sha256:{r.artifact_sha256[:12]}"
            if key not in workloads:
                workloads[key] = Workload.from_analysis(analyse(path.read_bytes(), str(path)))
            rows.append({"system": f"{device.id} ({r.model}/{r.variant})", "group": device.id,
                         "version": None, "core": device.core, "runtime": device.runtime,
                         "release": normalise(getattr(device, "runtime_version", None)),
                         "slot": None, "config": None, "benchmark": key,
                         "family": f"records:{r.model}", "dtype": "model",
                         "clock_mhz": float(device.clock_mhz), "latency_ms": float(m.value),
                         "energy_uj": np.nan, "board": board_key(device.id),
                         "source": METHODS[m.method]})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return Data(frame, workloads, skipped)
