"""MLPerf Tiny builders: shapes and parameters, MACs against the published figures, and their
int8 conversions against the reference .tflite models (skipped without ``../shared``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from bench import registry
from bench.artifacts.tflite_info import inspect
from bench.models import mlperf_tiny as mt
from bench.models.train import build_untrained
from tests.tflite_models import mlperf_model

#: builder → (reference int8 model, input shape, outputs, MACs of the README in ../shared).
REFERENCE = {
    "ds_cnn_kws": ("kws_ref_model_int8.tflite", (49, 10, 1), 12, 2.66e6),
    "mobilenet_v1_025_vww": ("vww_96_int8.tflite", (96, 96, 3), 2, 7.49e6),
    "resnet8_ic": ("ic_resnet8_int8.tflite", (32, 32, 3), 10, 12.5e6),
    "fc_autoencoder_ad": ("ad01_int8.tflite", (640,), 640, 264e3),
}
BUILDERS = {b.name: b for b in (mt.DS_CNN_KWS, mt.MOBILENET_V1_025_VWW, mt.RESNET8_IC,
                                mt.FC_AUTOENCODER_AD)}
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD")


def keras_macs(model: Any) -> int:
    """Multiply-accumulates of the conv, depthwise conv and dense layers (batch 1)."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            kh, kw = layer.kernel_size
            total += math.prod(layer.output_shape[1:]) * kh * kw * int(layer.input_shape[-1])
        elif kind == "DepthwiseConv2D":
            kh, kw = layer.kernel_size
            total += math.prod(layer.output_shape[1:]) * kh * kw
        elif kind == "Dense":
            total += int(layer.input_shape[-1]) * layer.units
    return total


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    """Each builder's untrained default model (seed 0), built once."""
    return {name: build_untrained(b, None, seed=0) for name, b in BUILDERS.items()}


def test_registered() -> None:
    for name, builder in BUILDERS.items():
        assert registry.models.get(name) is builder


@pytest.mark.parametrize("name", REFERENCE)
def test_default_io_is_the_reference(name: str) -> None:
    builder = BUILDERS[name]
    _, shape, outputs, _ = REFERENCE[name]
    assert builder.default_io(builder.params()) == (shape, outputs)
    assert builder.tasks == (("anomaly",) if name == "fc_autoencoder_ad" else ("classification",))


def test_params_are_strict_and_drive_default_io() -> None:
    with pytest.raises(ValidationError):
        mt.DsCnnParams(filter=32)
    with pytest.raises(ValidationError):
        mt.MobileNetV1Params(alpha=0)
    params = mt.ResNet8Params(input_shape=(28, 28, 1), classes=5)
    assert mt.RESNET8_IC.default_io(params) == ((28, 28, 1), 5)
    assert mt.FC_AUTOENCODER_AD.default_io(mt.FcAutoencoderParams(input_shape=(128,))) == (
        (128,), 128)


@pytest.mark.parametrize("name", REFERENCE)
def test_shapes_and_macs(models: dict[str, Any], name: str) -> None:
    _, shape, outputs, readme_macs = REFERENCE[name]
    model = models[name]
    assert tuple(model.input_shape[1:]) == shape
    assert tuple(model.output_shape[1:]) == (outputs,)
    assert keras_macs(model) == pytest.approx(readme_macs, rel=0.01)


@pytest.mark.parametrize("name", REFERENCE)
def test_untrained_activations_keep_their_scale(models: dict[str, Any], name: str) -> None:
    """settle(): without it the untrained VWW logits are ~1e-6 and TFLite Micro aborts."""
    from bench.models.train import import_keras

    model = models[name]
    last = "reconstruction" if name == "fc_autoencoder_ad" else "logits"
    x = np.random.default_rng(5).standard_normal((8, *model.input_shape[1:])).astype(np.float32)
    out = np.asarray(import_keras().Model(model.inputs, model.get_layer(last).output)(x))
    assert 0.05 < float(out.std()) < 50.0
    assert abs(float(out.mean())) < float(out.std())  # centred


def test_data_set_shape_wins_over_params() -> None:
    model = mt.build_ds_cnn(mt.DsCnnParams(), (40, 8, 1), 5)
    assert tuple(model.input_shape[1:]) == (40, 8, 1) and tuple(model.output_shape[1:]) == (5,)
    pool = next(la for la in model.layers if type(la).__name__ == "AveragePooling2D")
    assert pool.output_shape[1:3] == (1, 1)  # spans the 20×4 map


def test_bad_shapes_are_clear() -> None:
    with pytest.raises(ValueError, match="rank 3"):
        mt.build_resnet8(mt.ResNet8Params(), (32, 32), 10)
    with pytest.raises(ValueError, match="reconstructs its input"):
        mt.build_fc_autoencoder(mt.FcAutoencoderParams(), (640,), 10)


@pytest.mark.slow
@pytest.mark.parametrize("name", REFERENCE)
def test_int8_matches_reference(models: dict[str, Any], name: str) -> None:
    """The untrained model, calibrated on generated inputs as the harness does, has the
    reference int8 graph's weight ops, parameter count (every bias kept) and MACs (by
    ``bench.estimate.analysis`` when present).

    The only difference allowed: current converters fold the reference's Flatten RESHAPE into
    FULLY_CONNECTED, so its 2-element shape constant is gone.
    """
    from bench.variants.quantize import convert, generated_data

    file, shape, _, _ = REFERENCE[name]
    ref_data = mlperf_model(file).read_bytes()
    ref = inspect(ref_data)
    representative, _ = generated_data(shape, 8, 0)
    data = convert(models[name], shape, "int8", representative)
    ours = inspect(data)
    assert ours.inputs[0].shape == ref.inputs[0].shape
    assert ours.outputs[0].shape == ref.outputs[0].shape
    assert ours.inputs[0].dtype == ref.inputs[0].dtype == "int8"
    assert {op: ours.op_counts.get(op, 0) for op in WEIGHT_OPS} == {
        op: ref.op_counts.get(op, 0) for op in WEIGHT_OPS}
    reshape_consts = 2 * (ref.op_counts.get("RESHAPE", 0) - ours.op_counts.get("RESHAPE", 0))
    assert ours.params == ref.params - reshape_consts

    analysis = pytest.importorskip("bench.estimate.analysis")
    ours_a, ref_a = analysis.analyse(data), analysis.analyse(ref_data)
    assert ours_a.macs == pytest.approx(ref_a.macs, rel=0.01)
    assert ours_a.macs_by_class() == ref_a.macs_by_class()
