"""``digits``: scikit-learn's real handwritten digits, shipped inside scikit-learn (no network).

1,797 images of 8×8 pixels, 10 classes (0–9), each pixel an ink count 0–16 (the UCI "Optical
Recognition of Handwritten Digits" test set, downsampled by its authors). Images become float32
``(8, 8, 1)`` inputs scaled by the fixed range (÷ 16, so nothing is fitted on any split), shuffled
and split 70/15/15 (stratified, seeded) into train/validation/test: 1,258 / 270 / 269 images.
"""

from __future__ import annotations

import logging

import numpy as np

from bench.datasets.base import Dataset, DatasetPlugin, NoParams
from bench.datasets.splits import stratified_indices

log = logging.getLogger(__name__)

SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
#: Largest pixel value in the data set (ink count of a 4×4 block of the 32×32 original).
PIXEL_MAX = 16.0
SOURCE = "scikit-learn load_digits (UCI optical recognition of handwritten digits)"


def load(params: NoParams, seed: int) -> Dataset:
    """Load the digits, scale pixels to [0, 1] and split (stratified, ``seed``)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / PIXEL_MAX).astype(np.float32)[..., np.newaxis]  # (n, 8, 8, 1)
    y = bunch.target.astype(np.int32)
    rng = np.random.default_rng(seed)
    train_idx, val_idx, test_idx = stratified_indices(y, SPLIT_FRACTIONS, rng)
    log.debug("digits: %d/%d/%d images", len(train_idx), len(val_idx), len(test_idx))
    return Dataset(
        task="classification",
        x_train=x[train_idx], y_train=y[train_idx],
        x_val=x[val_idx], y_val=y[val_idx],
        x_test=x[test_idx], y_test=y[test_idx],
        info={"classes": [str(c) for c in bunch.target_names.tolist()],
              "source": SOURCE,
              "split": "stratified 70/15/15; pixels ÷ 16 (fixed range, nothing fitted)"},
    )


DIGITS = DatasetPlugin(
    name="digits",
    task="classification",
    load=load,
    description="Real 8×8 handwritten digits, 10 classes (scikit-learn load_digits).",
)
