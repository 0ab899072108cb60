"""The four built-in data sets: shapes, splits, seeding and train-only scaling."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from pydantic import ValidationError

from bench import registry
from bench.datasets import basic_motions, har, hvac, volume


def _arrays(d):
    return [d.x_train, d.y_train, d.x_val, d.y_val, d.x_test, d.y_test]


def test_builtin_refs_resolve_without_tensorflow():
    code = (
        "import sys\n"
        "from bench import registry\n"
        "for n in registry.datasets.names(): registry.datasets.get(n)\n"
        "for n in registry.models.names(): registry.models.get(n)\n"
        "registry.variant_steps.get('quantize')\n"
        "import bench.models.train\n"
        "bad = [m for m in ('tensorflow', 'tf_keras', 'keras') if m in sys.modules]\n"
        "sys.exit(f'imported {bad}' if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + proc.stdout


@pytest.mark.parametrize(
    ("name", "plugin"),
    [("har_synthetic", har.HAR_SYNTHETIC), ("basic_motions", basic_motions.BASIC_MOTIONS),
     ("hvac_building", hvac.HVAC_BUILDING), ("volume_anomaly", volume.VOLUME_ANOMALY)],
)
def test_registered_and_params_forbid_extra(name, plugin):
    assert registry.datasets.get(name) is plugin
    with pytest.raises(ValidationError):
        plugin.params.model_validate({"no_such_param": 1})


# --- har_synthetic ---------------------------------------------------------------------------

def test_har_shapes_and_stratified_split():
    d = har.load(har.HarParams(), seed=0)
    assert d.task == "classification"
    assert d.x_train.shape == (2100, 27) and d.x_val.shape == (450, 27)
    assert d.x_test.shape == (450, 27)
    assert d.x_train.dtype == np.float32
    for y in (d.y_train, d.y_val, d.y_test):
        assert np.bincount(y, minlength=5).tolist() == [len(y) // 5] * 5
    assert d.info["classes"] == 5 and d.info["features"] == 27


def test_har_scaling_fitted_on_train_only():
    d = har.load(har.HarParams(samples=600), seed=3)
    np.testing.assert_allclose(d.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(d.x_train.std(axis=0), 1, atol=1e-4)
    assert np.abs(d.x_val.mean(axis=0)).max() > 1e-3  # other splits are not re-fitted


def test_har_seeded():
    a, b = har.load(har.HarParams(samples=300), 1), har.load(har.HarParams(samples=300), 1)
    c = har.load(har.HarParams(samples=300), 2)
    for u, v in zip(_arrays(a), _arrays(b), strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.x_train, c.x_train)


def test_har_rejects_too_few_samples():
    with pytest.raises(ValueError, match="3 samples per class"):
        har.load(har.HarParams(samples=20, classes=10), 0)


# --- basic_motions ---------------------------------------------------------------------------

def test_basic_motions_is_the_real_data_set():
    d = basic_motions.load(basic_motions.BasicMotionsParams(), seed=0)
    assert d.info["classes"] == ["badminton", "running", "standing", "walking"]
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 80
    assert len(d.y_train) + len(d.y_val) == 40 and len(d.y_test) == 40
    assert d.x_train.shape[1] == 36 == len(d.info["features"])
    assert d.x_train.dtype == np.float32
    assert set(np.unique(d.y_val)) == {0, 1, 2, 3}  # stratified
    assert np.bincount(d.y_test).tolist() == [10, 10, 10, 10]
    assert d.info["source"] == "aeon BasicMotions (UEA)"
    np.testing.assert_allclose(d.x_train.mean(axis=0), 0, atol=1e-5)


def test_basic_motions_seed_moves_validation_not_test():
    a = basic_motions.load(basic_motions.BasicMotionsParams(), seed=0)
    b = basic_motions.load(basic_motions.BasicMotionsParams(), seed=1)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_val, b.x_val)


def test_channel_features_order():
    x = np.arange(2 * 6 * 5, dtype=np.float64).reshape(2, 6, 5)
    f = basic_motions.channel_features(x)
    assert f.shape == (2, 36)
    assert f[0, 0] == pytest.approx(2.0)  # accel_x mean
    assert f[0, 2] == 0.0 and f[0, 3] == 4.0 and f[0, 5] == 1.0  # min, max, mad_diff
    with pytest.raises(ValueError):
        basic_motions.channel_features(x[0])


# --- hvac_building ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hvac_full():
    return hvac.load(hvac.HvacParams(), seed=0)


def test_hvac_shapes_and_chronological_bounds(hvac_full):
    d = hvac_full
    assert d.task == "regression" and len(hvac.FEATURES) == 14
    assert d.info["split_minutes"] == {"train": [0, 30240], "validation": [30240, 36720],
                                       "test": [36720, 43200]}
    # windows need 60 input minutes + a 60-minute horizon inside their split
    assert d.x_train.shape == (30240 - 119, 60, 14)
    assert d.x_val.shape == (36720 - 30240 - 119, 60, 14)
    assert d.x_test.shape == (43200 - 36720 - 119, 60, 14)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.float32
    assert 10 < d.y_train.mean() < 30  # °C, not scaled


def test_hvac_window_starts_never_cross():
    starts = hvac.window_starts(30240, 36720, 1)
    assert starts[0] == 30240 and starts[-1] + 119 == 36719
    assert hvac.window_starts(0, 100, 1).size == 0


def test_hvac_targets_and_train_only_scaling(hvac_full):
    raw = hvac.simulate(30, np.random.default_rng(0))
    feats = hvac.engineer(raw)
    indoor = raw["indoor"][raw["burn_in"]:]
    mean, std = feats[:30240].mean(axis=0), feats[:30240].std(axis=0)
    d = hvac_full
    np.testing.assert_allclose(d.x_train[0], (feats[0:60] - mean) / std, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(d.x_test[5], (feats[36725:36785] - mean) / std, atol=1e-4)
    assert d.y_train[0] == pytest.approx(indoor[119])
    assert d.y_val[0] == pytest.approx(indoor[30240 + 119])
    assert d.y_test[-1] == pytest.approx(indoor[43199])
    # lag and delta columns are what their names say
    assert feats[100, 5] == pytest.approx(indoor[40])
    assert feats[100, 9] == pytest.approx(feats[100, 1] - feats[40, 1])
    assert set(np.unique(feats[:, 3])) <= {-1.0, 0.0, 1.0}


def test_hvac_stride_days_and_seed():
    d = hvac.load(hvac.HvacParams(days=10, window_stride=60), seed=1)
    assert d.info["window_stride"] == 60 and d.info["days"] == 10
    assert len(d.y_train) == len(range(0, 10080 - 119, 60))
    again = hvac.load(hvac.HvacParams(days=10, window_stride=60), seed=1)
    np.testing.assert_array_equal(d.x_val, again.x_val)
    other = hvac.load(hvac.HvacParams(days=10, window_stride=60), seed=2)
    assert not np.array_equal(d.y_train, other.y_train)


# --- volume_anomaly --------------------------------------------------------------------------

def test_volume_recipe():
    d = volume.load(volume.VolumeParams(), seed=0)
    assert d.task == "anomaly"
    assert d.info["split_readings"] == {"train": [0, 7070], "validation": [7070, 8585],
                                        "test": [8585, 10100]}
    assert len(d.y_train) + d.info["train_windows_dropped"] == 7070 - 9
    assert d.x_val.shape == (1515 - 9, 10) and d.x_test.shape == (1515 - 9, 10)
    assert d.x_train.dtype == np.float32
    assert d.y_train.sum() == 0  # normal windows only
    assert d.y_val.sum() > 0 and d.y_test.sum() > 0
    assert d.x_train.min() == 0.0 and d.x_train.max() == 1.0
    assert max(d.x_val.max(), d.x_test.max()) > 1.0  # no clipping
    assert "F1" in d.info["threshold_rule"]


def test_volume_labels_and_seed():
    values, flags = volume.readings(volume.VolumeParams(), np.random.default_rng(0))
    assert len(values) == 10_100 and flags.sum() == 100
    a = volume.load(volume.VolumeParams(), seed=4)
    b = volume.load(volume.VolumeParams(), seed=4)
    for u, v in zip(_arrays(a), _arrays(b), strict=True):
        np.testing.assert_array_equal(u, v)
    # window labels: 1 exactly when one of its 10 readings is a spike
    _, flags = volume.readings(volume.VolumeParams(), np.random.default_rng(4))
    expected = np.convolve(flags, np.ones(10), "valid")[8585:10100 - 9] > 0
    np.testing.assert_array_equal(a.y_test, expected.astype(np.int32))
