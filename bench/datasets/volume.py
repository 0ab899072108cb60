"""``volume_anomaly``: spikes in a stream of lognormal traffic volumes, for an autoencoder.

Recipe (seeded): 10,000 normal readings ~ lognormal(μ=12, σ=1) and 100 anomalous spikes ~
lognormal(μ=15, σ=1) (μ, σ of the underlying normal) at random positions of one 10,100-reading
stream. Windows of 10 consecutive readings, stride 1; a window's label is 1 if it holds any
anomalous reading. Chronological 70/15/15 split by reading index (a window belongs to a split
only if all its readings do). The training split keeps normal windows only. MinMax scaling is
fitted on the readings of those training windows and applied to everything without clipping,
so spikes may scale above 1.
"""

from __future__ import annotations

import logging

import numpy as np
from pydantic import Field

from bench.datasets.base import Dataset, DatasetPlugin
from bench.errors import SampleCount, Strict

log = logging.getLogger(__name__)

SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
THRESHOLD_RULE = "threshold maximising F1 on the validation split"


class VolumeParams(Strict):
    """Parameters of ``volume_anomaly`` (defaults are the published recipe)."""

    normal: SampleCount = Field(10_000, ge=100)
    anomalies: SampleCount = Field(100, ge=0)
    window: int = Field(10, ge=1, le=1000)


def readings(params: VolumeParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The raw stream and its per-reading 0/1 anomaly flags."""
    n = params.normal + params.anomalies
    flags = np.zeros(n, dtype=bool)
    flags[rng.choice(n, size=params.anomalies, replace=False)] = True
    values = np.empty(n)
    values[~flags] = rng.lognormal(mean=12.0, sigma=1.0, size=params.normal)
    values[flags] = rng.lognormal(mean=15.0, sigma=1.0, size=params.anomalies)
    return values, flags


def load(params: VolumeParams, seed: int) -> Dataset:
    """Generate the stream, window it, split it and scale it."""
    rng = np.random.default_rng(seed)
    values, flags = readings(params, rng)
    n, w = len(values), params.window
    cuts = np.round(np.cumsum(SPLIT_FRACTIONS) * n).astype(int)
    bounds = [0, int(cuts[0]), int(cuts[1]), n]

    win_x = np.lib.stride_tricks.sliding_window_view(values, w)  # (n - w + 1, w)
    win_y = np.lib.stride_tricks.sliding_window_view(flags, w).any(axis=1).astype(np.int32)
    starts = np.arange(len(win_x))
    parts = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        sel = (starts >= lo) & (starts + w <= hi)
        parts.append((win_x[sel], win_y[sel]))
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = parts
    dropped = int(y_tr.sum())
    x_tr, y_tr = x_tr[y_tr == 0], y_tr[y_tr == 0]
    if len(x_tr) == 0 or len(x_va) == 0 or len(x_te) == 0:
        raise ValueError(f"volume_anomaly: {params} leaves an empty split")

    lo_v, hi_v = float(x_tr.min()), float(x_tr.max())
    span = hi_v - lo_v if hi_v > lo_v else 1.0

    def scale(a: np.ndarray) -> np.ndarray:
        return ((a - lo_v) / span).astype(np.float32)

    log.debug("volume_anomaly: %d/%d/%d windows, %d anomalous train windows dropped",
              len(x_tr), len(x_va), len(x_te), dropped)
    return Dataset(
        task="anomaly",
        x_train=scale(x_tr), y_train=y_tr, x_val=scale(x_va), y_val=y_va,
        x_test=scale(x_te), y_test=y_te,
        info={
            "recipe": (f"{params.normal} normal readings ~ lognormal(12, 1) with "
                       f"{params.anomalies} spikes ~ lognormal(15, 1) at random positions; "
                       f"windows of {w} readings, stride 1, label 1 if any reading is a spike; "
                       "chronological 70/15/15 split by reading index; train keeps normal "
                       "windows only; MinMax scaling fitted on the training readings, no clipping"),
            "window": w,
            "split_readings": {"train": bounds[0:2], "validation": bounds[1:3],
                               "test": bounds[2:4]},
            "train_windows_dropped": dropped,
            "scaling": {"min": lo_v, "max": hi_v},
            "threshold_rule": THRESHOLD_RULE,
            "source": "synthetic lognormal volumes with spikes",
        },
    )


VOLUME_ANOMALY = DatasetPlugin(
    name="volume_anomaly",
    task="anomaly",
    load=load,
    params=VolumeParams,
    description="Lognormal volume readings with spikes; windows of 10; autoencoder anomaly task.",
)
