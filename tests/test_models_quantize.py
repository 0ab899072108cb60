"""Seed models, training and the quantize step, with real tf-keras, TFLite and LiteRT."""

from __future__ import annotations

import numpy as np
import pytest

from bench import registry
from bench.datasets import har, hvac, volume
from bench.datasets.base import Dataset
from bench.models import seeds
from bench.models.train import (
    ModelFileError,
    TrainSpec,
    build_for,
    load_keras_file,
    outputs_for,
    train,
)
from bench.variants.base import BuildState, StepError
from bench.variants.quantize import QUANTIZE, QuantizeParams, convert_fp32, converter_reason

MODES = ["fp32", "fp16", "dynamic_int8", "int8", "int16x8"]


def interpreter(flatbuffer: bytes):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=flatbuffer)
    it.allocate_tensors()
    return it


@pytest.fixture(scope="module")
def har_small() -> Dataset:
    return har.load(har.HarParams(samples=600), seed=0)


@pytest.fixture(scope="module")
def mlp(har_small):
    return train(seeds.HAR_MLP, None, har_small, TrainSpec(epochs=2, batch_size=32))


def test_seed_builders_registered():
    assert registry.models.get("har_mlp") is seeds.HAR_MLP
    assert registry.models.get("hvac_lstm") is seeds.HVAC_LSTM
    assert registry.models.get("volume_autoencoder") is seeds.VOLUME_AUTOENCODER
    assert registry.variant_steps.get("quantize") is QUANTIZE


def test_build_each_model():
    m = seeds.build_mlp(seeds.MlpParams(), (27,), 5)
    assert m.output_shape == (None, 5) and [layer.units for layer in m.layers] == [128, 64, 5]
    lstm = seeds.build_lstm(seeds.LstmParams(), (60, 14), 1)
    assert lstm.output_shape == (None, 1)
    assert lstm.layers[0].return_sequences and lstm.layers[1].units == 16
    ae = seeds.build_autoencoder(seeds.AutoencoderParams(), (10,), 10)
    assert ae.output_shape == (None, 10) and ae.layers[0].units == 4
    assert ae.layers[-1].activation.__name__ == "sigmoid"


def test_builders_reject_bad_shapes():
    with pytest.raises(ValueError, match="equal the input size"):
        seeds.build_autoencoder(seeds.AutoencoderParams(), (10,), 3)
    with pytest.raises(ValueError, match="rank 2"):
        seeds.build_lstm(seeds.LstmParams(), (14,), 1)


def test_outputs_for_each_task(har_small):
    assert outputs_for(har_small) == 5
    named = Dataset(**{**har_small.__dict__, "info": {"classes": list("abcde")}})
    assert outputs_for(named) == 5
    with pytest.raises(ValueError, match="classes"):
        outputs_for(Dataset(**{**har_small.__dict__, "info": {}}))
    with pytest.raises(ValueError, match="out of range"):
        outputs_for(Dataset(**{**har_small.__dict__, "info": {"classes": 3}}))
    assert outputs_for(volume.load(volume.VolumeParams(), 0)) == 10
    reg = hvac.load(hvac.HvacParams(days=4, window_stride=120), 0)
    assert outputs_for(reg) == 1


def test_train_mlp_and_task_check(mlp, har_small):
    acc = (mlp.predict(har_small.x_test, verbose=0).argmax(axis=1) == har_small.y_test).mean()
    assert acc > 0.5  # 2 epochs on 420 samples: learning, not converged
    with pytest.raises(ValueError, match="supports regression"):
        build_for(seeds.HVAC_LSTM, None, har_small)


def test_train_autoencoder_is_seeded():
    d = volume.load(volume.VolumeParams(normal=1000, anomalies=10), 0)
    a = train(seeds.VOLUME_AUTOENCODER, {}, d, TrainSpec(epochs=1, seed=5))
    b = train(seeds.VOLUME_AUTOENCODER, {"bottleneck": 4}, d, TrainSpec(epochs=1, seed=5))
    assert a.output_shape == (None, 10)
    for u, v in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_quantize_modes_convert_mlp(mlp, har_small, mode):
    state = BuildState(keras_model=mlp, tflite=None, dataset=har_small)
    QUANTIZE.apply(state, QuantizeParams.model_validate(
        {"mode": mode, "calibration": {"samples": 20}}))
    it = interpreter(state.tflite)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    assert inp["shape"].tolist() == [1, 27]
    assert state.info["quantize"] == mode
    if mode == "int8":
        assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    else:
        assert inp["dtype"] == np.float32 and out["dtype"] == np.float32
    if mode in ("int8", "int16x8"):
        assert state.info["calibration"] == {"split": "validation", "samples": 20,
                                             "selection": "spread"}
    else:
        assert "calibration" not in state.info
    dtypes = {t["dtype"] for t in it.get_tensor_details()}
    assert (np.float16 in dtypes) == (mode == "fp16")


@pytest.mark.parametrize("mode", ["int8", "dynamic_int8"])
def test_per_channel_dense_false_gives_one_scale_per_weight_tensor(mlp, har_small, mode):
    def distinct_scales(per_channel: bool) -> list[int]:
        """Distinct weight scales of each int8 dense weight matrix, smallest first."""
        state = BuildState(keras_model=mlp, tflite=None, dataset=har_small)
        QUANTIZE.apply(state, QuantizeParams(mode=mode, calibration={"samples": 20},
                                             per_channel_dense=per_channel))
        assert state.info.get("per_channel_dense", True) is per_channel
        return sorted(np.unique(t["quantization_parameters"]["scales"]).size
                      for t in interpreter(state.tflite).get_tensor_details()
                      if t["dtype"] == np.int8 and len(t["shape"]) == 2 and t["shape"][0] > 1)

    units = [5, 64, 128] if mode == "int8" else [64, 128]  # dynamic: small tensors stay float
    assert distinct_scales(True) == units  # one scale per output channel
    assert distinct_scales(False) == [1] * len(units)


def test_calibration_records_actual_count(mlp, har_small):
    state = BuildState(keras_model=mlp, tflite=None, dataset=har_small)
    QUANTIZE.apply(state, QuantizeParams(mode="int8", calibration={"split": "test",
                                                                   "samples": 10_000}))
    assert state.info["calibration"] == {"split": "test", "samples": len(har_small.y_test),
                                         "selection": "spread"}


def test_convert_fp32_matches_keras(mlp, har_small):
    it = interpreter(convert_fp32(mlp, (27,)))
    x = har_small.x_test[:1]
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    got = it.get_tensor(it.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, mlp.predict(x, verbose=0), atol=1e-5)


def test_quantize_step_errors(mlp):
    with pytest.raises(StepError, match="already a .tflite file"):
        QUANTIZE.apply(BuildState(keras_model=None, tflite=b"TFL3", dataset=None),
                       QuantizeParams(mode="int8"))
    generated = BuildState(keras_model=mlp, tflite=None, dataset=None)  # no data set
    QUANTIZE.apply(generated, QuantizeParams(mode="int8", calibration={"samples": 10}))
    assert generated.info["calibration"]["split"] == "generated"
    assert generated.info["calibration"]["samples"] == 10
    state = BuildState(keras_model=mlp, tflite=None, dataset=None)
    QUANTIZE.apply(state, QuantizeParams(mode="dynamic_int8"))  # needs no data
    assert state.tflite


def test_quantize_params_validation():
    with pytest.raises(ValueError):
        QuantizeParams.model_validate({"mode": "int4"})
    with pytest.raises(ValueError):
        QuantizeParams.model_validate({"mode": "int8", "calibration": {"split": "dev"}})
    with pytest.raises(ValueError):
        QuantizeParams.model_validate({"mode": "int8", "extra": 1})
    with pytest.raises(ValueError, match="per_channel_dense applies to integer weights"):
        QuantizeParams.model_validate({"mode": "fp16", "per_channel_dense": False})


def test_converter_reason_trims():
    exc = RuntimeError("<unknown>:0: error: op X unsupported\n<unknown>:0: note: loc(x)\n"
                       "<unknown>:0: error: op X unsupported\n\nSee details")
    assert converter_reason(exc) == "op X unsupported; See details"
    assert converter_reason(RuntimeError()) == "RuntimeError"


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
def test_load_keras_file(mlp, tmp_path):
    for name in ("m.keras", "m.h5"):
        mlp.save(tmp_path / name)
        loaded = load_keras_file(tmp_path / name)
        x = np.zeros((1, 27), np.float32)
        np.testing.assert_allclose(loaded.predict(x, verbose=0), mlp.predict(x, verbose=0),
                                   atol=1e-6)
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="junk.keras"):
        load_keras_file(junk)
    with pytest.raises(ModelFileError, match="missing.h5"):
        load_keras_file(tmp_path / "missing.h5")
    with pytest.raises(ModelFileError, match="expected one of"):
        load_keras_file(tmp_path / "m.onnx")


@pytest.mark.slow
def test_hvac_lstm_int8_converts_and_int16x8_is_a_step_error():
    d = hvac.load(hvac.HvacParams(days=4, window_stride=30), seed=0)
    model = train(seeds.HVAC_LSTM, None, d, TrainSpec(epochs=1))
    assert abs(float(model.layers[-1].bias.numpy()[0]) - d.y_train.mean()) < 0.5

    state = BuildState(keras_model=model, tflite=None, dataset=d)
    QUANTIZE.apply(state, QuantizeParams.model_validate(
        {"mode": "int8", "calibration": {"samples": 16}}))
    assert 8_000 < len(state.tflite) < 32_000
    it = interpreter(state.tflite)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    assert inp["shape"].tolist() == [1, 60, 14]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8

    state = BuildState(keras_model=model, tflite=None, dataset=d)
    with pytest.raises(StepError, match=r"16x8.*LSTM"):
        QUANTIZE.apply(state, QuantizeParams.model_validate(
            {"mode": "int16x8", "calibration": {"samples": 4}}))
    assert state.tflite is None
