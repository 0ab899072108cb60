"""``basic_motions``: the real UEA BasicMotions data set, shipped inside aeon (no network).

80 recordings (40 train, 40 test) of a smartwatch's 6-axis IMU (accelerometer x/y/z, gyroscope
x/y/z), 100 time steps each (10 s at 10 Hz), 4 activities: badminton, running, standing, walking.
Each recording becomes one float32 vector of per-channel statistics (:data:`STATISTICS` ×
:data:`CHANNELS` = 36 features). aeon's train split is divided (stratified, seeded) into our train
and validation splits; aeon's test split is our test split. Features are standardised on train.
"""

from __future__ import annotations

import logging

import numpy as np
from pydantic import Field

from bench.datasets.base import Dataset, DatasetPlugin
from bench.datasets.splits import standardise, stratified_indices
from bench.errors import Strict

log = logging.getLogger(__name__)

#: The six channels in aeon's order (dimension 0–2 accelerometer, 3–5 gyroscope).
CHANNELS = ("accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z")

#: Per-channel statistics, in feature order. ``mad_diff`` is the mean absolute first difference
#: (how jerky the signal is).
STATISTICS = ("mean", "std", "min", "max", "rms", "mad_diff")

SOURCE = "aeon BasicMotions (UEA)"


class BasicMotionsParams(Strict):
    """Parameters of ``basic_motions``."""

    #: Share of aeon's 40 training recordings held out (stratified) as our validation split.
    validation_fraction: float = Field(0.3, gt=0.0, lt=1.0)


def feature_names() -> list[str]:
    """Names of the 36 features, ``<channel>_<statistic>``, channel-major."""
    return [f"{c}_{s}" for c in CHANNELS for s in STATISTICS]


def channel_features(x: np.ndarray) -> np.ndarray:
    """``(n, channels, steps)`` series → ``(n, channels * len(STATISTICS))`` float32 features."""
    if x.ndim != 3:
        raise ValueError(f"expected (cases, channels, steps) series, got shape {x.shape}")
    stats = np.stack(
        [
            x.mean(axis=2),
            x.std(axis=2),
            x.min(axis=2),
            x.max(axis=2),
            np.sqrt((x**2).mean(axis=2)),
            np.abs(np.diff(x, axis=2)).mean(axis=2),
        ],
        axis=2,
    )  # (n, channels, statistics): channel-major once flattened
    return stats.reshape(len(x), -1).astype(np.float32)


def load(params: BasicMotionsParams, seed: int) -> Dataset:
    """Load BasicMotions from aeon, extract features and split."""
    from aeon.datasets import load_basic_motions

    x_tr, y_tr = load_basic_motions(split="train")
    x_te, y_te = load_basic_motions(split="test")
    if x_tr.shape[1] != len(CHANNELS):
        raise ValueError(f"BasicMotions from aeon has {x_tr.shape[1]} channels, expected 6")
    classes = sorted(np.unique(np.concatenate([y_tr, y_te])).tolist())
    index = {name: i for i, name in enumerate(classes)}
    yi_tr = np.array([index[v] for v in y_tr], dtype=np.int32)
    yi_te = np.array([index[v] for v in y_te], dtype=np.int32)

    f_tr, f_te = channel_features(x_tr), channel_features(x_te)
    rng = np.random.default_rng(seed)
    frac = params.validation_fraction
    train_idx, val_idx = stratified_indices(yi_tr, (1.0 - frac, frac), rng)
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise ValueError(f"validation_fraction={frac} leaves an empty train or validation split")
    x_train, x_val, x_test = standardise(f_tr[train_idx], f_tr[val_idx], f_te)
    log.debug("basic_motions: %d/%d/%d cases", len(train_idx), len(val_idx), len(f_te))
    return Dataset(
        task="classification",
        x_train=x_train, y_train=yi_tr[train_idx],
        x_val=x_val, y_val=yi_tr[val_idx],
        x_test=x_test, y_test=yi_te,
        info={
            "classes": classes,
            "features": feature_names(),
            "channels": list(CHANNELS),
            "statistics": list(STATISTICS),
            "source": SOURCE,
            "split": "aeon train → train/validation (stratified); aeon test → test; "
                     "standardised on train",
        },
    )


BASIC_MOTIONS = DatasetPlugin(
    name="basic_motions",
    task="classification",
    load=load,
    params=BasicMotionsParams,
    description="Real 6-axis IMU recordings of 4 activities (UEA BasicMotions via aeon).",
)
