"""``int4`` with ``qat``: fine-tuning on the int4 grid, then the same int4 quantization.

The slow tests train the digits CNN briefly (real tf-keras, ai-edge-quantizer, LiteRT) and check
what makes QAT worth having: the trained weights sit on the grid the int4 step quantizes to, so
the artifact holds exactly those weights, and it classifies at least as well as post-training
int4 of the same model.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from bench.datasets import digits
from bench.datasets.base import Dataset, NoParams
from bench.models.cnn import DIGITS_CNN
from bench.models.train import TrainSpec, train
from bench.suite.spec import SpecError
from bench.variants.base import BuildState, StepError
from bench.variants.int4 import INT4, Int4Params
from bench.variants.int4_qat import Int4QatParams, groups, levels, quantized_kernels, snap
from bench.variants.prune import _buffer_bytes, _values
from tests.test_variants_toolbox import accuracy

# --- fast ---------------------------------------------------------------------------------------


def test_qat_params_are_strict_and_default_to_a_fine_tuning_rate() -> None:
    params = Int4Params(recipe="static_int8_activations", qat={"epochs": 3})
    assert params.qat == Int4QatParams(epochs=3)
    assert params.qat.learning_rate < 1e-3  # fine-tuning a trained model, not training
    assert Int4Params().qat is None  # post-training unless asked
    with pytest.raises(ValidationError, match="epoch"):
        Int4Params(qat={"epoch": 3})  # typo
    with pytest.raises(ValidationError):
        Int4Params(qat={"epochs": 0})


@pytest.mark.parametrize(("axes", "channel"), [(None, None), ((0, 1, 2), 3), ((0, 1, 3), 2)])
def test_snap_puts_weights_on_the_int4_grid_it_keeps(axes: tuple[int, ...] | None,
                                                     channel: int | None) -> None:
    w = np.random.default_rng(0).normal(size=(3, 3, 4, 6)).astype(np.float32)
    q = snap(w, axes)
    scale = np.max(np.abs(w), axis=axes, keepdims=True) / 7
    steps = q / scale
    assert np.allclose(steps, np.rint(steps), atol=1e-4) and np.abs(steps).max() <= 7 + 1e-4
    assert np.abs(q - w).max() <= scale.max() / 2 + 1e-6  # rounded to the nearest level
    per_scale = ([q.ravel()] if channel is None else
                 list(np.moveaxis(q, channel, 0).reshape(w.shape[channel], -1)))
    assert [len(np.unique(g)) for g in per_scale] == [len(np.unique(g))
                                                      for g in groups(q, axes)]
    assert max(len(np.unique(g)) for g in per_scale) <= 16
    assert np.array_equal(snap(q, axes), q)  # quantizing again lands on the same values


def test_one_scale_per_output_channel_of_each_kernel_layout() -> None:
    from bench.models.train import import_keras

    keras = import_keras()
    model = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(5, 3), keras.layers.DepthwiseConv2D(3),
        keras.layers.SeparableConv2D(4, 1), keras.layers.Conv2DTranspose(2, 3),
        keras.layers.Flatten(), keras.layers.Dense(3)])
    found = [(tuple(v.shape), axes) for v, axes in quantized_kernels(model)]
    assert found == [((3, 3, 3, 5), (0, 1, 2)),      # (h, w, in, out)
                     ((3, 3, 5, 1), (0, 1)),         # (h, w, channel, multiplier)
                     ((1, 1, 5, 1), (0, 1)),         # separable: its depthwise part…
                     ((1, 1, 5, 4), (0, 1, 2)),      # …and its pointwise part
                     ((3, 3, 2, 4), (0, 1, 3)),      # transposed: (h, w, out, in)
                     ((72, 3), (0,))]


def test_qat_needs_the_keras_model() -> None:
    state = BuildState(keras_model=None, tflite=b"TFL3", dataset=None)
    with pytest.raises(StepError, match="int4 qat needs the Keras model"):
        INT4.apply(state, Int4Params(qat={}))


# --- slow: the digits CNN -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def data() -> Dataset:
    return digits.load(NoParams(), 0)


@pytest.fixture(scope="module")
def cnn(data: Dataset):
    return train(DIGITS_CNN, None, data, TrainSpec(epochs=20, batch_size=32))


def int4_constants(model: bytes) -> list[np.ndarray]:
    """Each int4 constant of ``model`` dequantized (values × their scales), flattened."""
    from ai_edge_litert import schema_py_generated as s

    root = s.Model.GetRootAs(model, 0)
    found = []
    for g in range(root.SubgraphsLength()):
        sub = root.Subgraphs(g)
        for t in range(sub.TensorsLength()):
            tensor = sub.Tensors(t)
            raw = _buffer_bytes(root, model, tensor.Buffer())
            if tensor.Type() != s.TensorType.INT4 or not raw:
                continue
            shape = [int(d) for d in tensor.ShapeAsNumpy()]
            values = _values(raw, "int4", math.prod(shape)).reshape(shape).astype(np.float32)
            q = tensor.Quantization()
            scales = q.ScaleAsNumpy().astype(np.float32)
            axis = q.QuantizedDimension() if len(scales) > 1 else None
            if axis is not None:
                scales = scales.reshape([-1 if i == axis else 1 for i in range(len(shape))])
            found.append((values * scales).ravel())
    return found


@pytest.mark.slow
@pytest.mark.parametrize("granularity", ["tensorwise", "channelwise"])
def test_qat_int4_artifact_holds_the_trained_weights(cnn, data, granularity) -> None:
    params = {"recipe": "static_int8_activations", "granularity": granularity}
    plain = BuildState(keras_model=cnn, tflite=None, dataset=data)
    INT4.apply(plain, Int4Params(**params))
    tuned = BuildState(keras_model=cnn, tflite=None, dataset=data)
    INT4.apply(tuned, Int4Params(**params, qat={"epochs": 5, "batch_size": 32}))

    facts = tuned.info["int4_qat"]
    assert facts["kernels"] == 4 and facts["levels"] <= 16 and tuned.info["int4"]["qat"]
    assert levels(tuned.keras_model, granularity) <= 16
    assert levels(cnn, granularity) > 16  # the trained model was not on the grid
    kernels = sorted((w.ravel() for w in tuned.keras_model.get_weights() if w.ndim > 1),
                     key=len)
    stored = sorted(int4_constants(tuned.tflite), key=len)
    assert [len(k) for k in kernels] == [len(c) for c in stored]
    for kernel, constant in zip(kernels, stored, strict=True):  # same weights, maybe transposed
        assert np.allclose(np.sort(kernel), np.sort(constant), rtol=1e-5, atol=1e-7)
    assert accuracy(tuned.tflite, data) >= accuracy(plain.tflite, data)


def test_a_misspelt_qat_setting_is_a_suite_error(tmp_path: Path) -> None:
    from tests.test_untrusted_steps import _load

    with pytest.raises(SpecError, match=r"variants\[1\]\.steps\[0\]\.int4\.qat\.epoch: "
                                        "unknown key"):
        _load(tmp_path, [{"int4": {"recipe": "static_int8_activations", "qat": {"epoch": 3}}}])
    assert _load(tmp_path, [{"int4": {"qat": {}}}]).variants[1].steps == [{"int4": {"qat": {}}}]
