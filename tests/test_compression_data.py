"""The ``digits`` data set (scikit-learn's real 8×8 digits) and the ``digits_cnn`` builder."""

from __future__ import annotations

import numpy as np
import pytest

from bench import registry
from bench.datasets.base import NoParams
from bench.models.cnn import CnnParams


def test_digits_are_real_images_split_stratified_and_seeded() -> None:
    plugin = registry.datasets.get("digits")
    data = plugin.load(NoParams(), 0)
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (1258, 270, 269)
    assert data.input_shape == (8, 8, 1) and data.x_train.dtype == np.float32
    assert data.x_train.min() >= 0.0 and data.x_train.max() == 1.0
    for y in (data.y_train, data.y_val, data.y_test):  # every class in every split
        counts = np.bincount(y, minlength=10)
        assert counts.min() >= 0.8 * counts.max()
    again, other = plugin.load(NoParams(), 0), plugin.load(NoParams(), 1)
    assert np.array_equal(again.x_test, data.x_test)
    assert not np.array_equal(other.x_test, data.x_test)
    # the splits partition the 1,797 images: no image is in two splits
    rows = {x.tobytes() for x in np.concatenate([data.x_train, data.x_val, data.x_test])}
    assert len(rows) > 1700  # a few digits are pixel-identical in the source


def test_cnn_widths_and_shapes() -> None:
    builder = registry.models.get("digits_cnn")
    model = builder.build(CnnParams(), (8, 8, 1), 10)
    assert model.count_params() == 3658
    assert model.output_shape == (None, 10)
    tiny = builder.build(CnnParams(filters=[2, 4], dense=0), (8, 8, 1), 10)
    assert tiny.count_params() == 266 and "dense" not in [layer.name for layer in tiny.layers]
    with pytest.raises(ValueError, match="at least 8 pixels"):
        builder.build(CnnParams(filters=[2, 2, 2]), (4, 4, 1), 10)
    with pytest.raises(ValueError, match="height, width, channels"):
        builder.build(CnnParams(), (64,), 10)


def test_cnn_params_are_checked() -> None:
    with pytest.raises(ValueError):
        CnnParams.model_validate({"filters": [0, 4]})
    with pytest.raises(ValueError):
        CnnParams.model_validate({"filters": []})
    assert CnnParams.model_validate({"filters": [4, 8], "dense": 0}).dense == 0
