"""The compression toolbox: prune, qat, int4 and cluster on the HAR MLP with tiny real data.

Every step trains or quantizes for real (tf-keras, tfmot, ai-edge-quantizer), then the result
runs in LiteRT, and where it can in TFLite Micro.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from bench import registry
from bench.artifacts.tflite_info import inspect, model_size_gzip
from bench.datasets import har
from bench.datasets.base import Dataset
from bench.models import seeds
from bench.models.train import TrainSpec, train
from bench.variants.base import BuildState, StepError
from bench.variants.cluster import CLUSTER, ClusterParams
from bench.variants.int4 import INT4, Int4Params
from bench.variants.prune import (
    PRUNE,
    PruneParams,
    _values,
    default_frequency,
    schedule,
    tflite_sparsity,
    weight_sparsity,
)
from bench.variants.qat import QAT, QatParams
from bench.variants.quantize import QUANTIZE, QuantizeParams, convert_fp32

MLP_WEIGHTS = 27 * 128 + 128 * 64 + 64 * 5  # kernels of the three Dense layers


# --- fast: parameters and parsing ---------------------------------------------------------------

def test_steps_registered():
    for name, step in [("prune", PRUNE), ("qat", QAT), ("int4", INT4), ("cluster", CLUSTER)]:
        assert registry.variant_steps.get(name) is step


def test_params_validate():
    with pytest.raises(ValidationError, match="below initial_sparsity"):
        PruneParams(initial_sparsity=0.8, final_sparsity=0.5)
    with pytest.raises(ValidationError, match="after begin_step"):
        PruneParams(begin_step=10, end_step=5)
    with pytest.raises(ValidationError):
        PruneParams(final_sparsity=1.0)
    with pytest.raises(ValidationError):
        QatParams(epoch=3)  # typo: extra keys are refused
    with pytest.raises(ValidationError):
        Int4Params(recipe="int3")
    assert Int4Params().resolved_granularity() == "channelwise"
    assert Int4Params(recipe="static_int8_activations").resolved_granularity() == "tensorwise"
    assert ClusterParams().clusters == 16


def test_schedule_reaches_final_sparsity_on_a_pruning_step():
    assert default_frequency(13) == 1
    assert default_frequency(65) == 5
    assert default_frequency(200) == 20
    plan = schedule(PruneParams(), total_steps=66)
    assert plan["end_step"] == 65 and (plan["end_step"] - plan["begin_step"]) % plan[
        "frequency"] == 0
    assert schedule(PruneParams(end_step=40, frequency=7), 66)["frequency"] == 7
    with pytest.raises(StepError, match="not after begin_step"):
        schedule(PruneParams(begin_step=70), 66)


def test_int4_values_unpack_low_nibble_first():
    packed = bytes([0x21, 0xF0, 0x08])  # 1, 2, 0, -1, -8, 0
    assert _values(packed, "int4", 5).tolist() == [1, 2, 0, -1, -8]


# --- slow: real training and conversion ---------------------------------------------------------

@pytest.fixture(scope="module")
def data() -> Dataset:
    return har.load(har.HarParams(samples=600), seed=0)


@pytest.fixture(scope="module")
def mlp(data):
    return train(seeds.HAR_MLP, None, data, TrainSpec(epochs=3, batch_size=32))


@pytest.fixture(scope="module")
def fp32(mlp) -> bytes:
    return convert_fp32(mlp, (27,))


def run_litert(model: bytes, x: np.ndarray) -> np.ndarray:
    """Class predictions of ``model`` in LiteRT, one sample per invoke (int8 I/O handled)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    preds = []
    for row in x:
        sample = row[None].astype(np.float32)
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            sample = np.clip(np.round(sample / scale + zero), -128, 127).astype(inp["dtype"])
        it.set_tensor(inp["index"], sample)
        it.invoke()
        preds.append(int(np.argmax(it.get_tensor(out["index"]))))
    return np.array(preds)


def accuracy(model: bytes, data: Dataset) -> float:
    return float(np.mean(run_litert(model, data.x_test) == data.y_test))


def run_steps(mlp, data, *steps) -> BuildState:
    state = BuildState(keras_model=mlp, tflite=None, dataset=data)
    for step, params in steps:
        step.apply(state, params)
    if state.tflite is None:
        state.tflite = convert_fp32(state.keras_model, (27,))
    return state


@pytest.mark.slow
def test_prune_reaches_target_sparsity_and_compresses(mlp, data, fp32):
    state = run_steps(mlp, data, (PRUNE, PruneParams(initial_sparsity=0.3, final_sparsity=0.7)))
    info = state.info["prune"]
    assert info["keras_sparsity"] == pytest.approx(0.7, abs=0.01)
    assert info["schedule"]["end_step"] == info["schedule"]["total_steps"] - 1
    measured = weight_sparsity(state.tflite)
    assert measured.total == MLP_WEIGHTS and measured.tensors == 3
    assert tflite_sparsity(state.tflite) == pytest.approx(0.7, abs=0.01)
    assert tflite_sparsity(fp32) < 0.01
    assert len(state.tflite) == len(fp32)  # zeros are stored dense…
    assert model_size_gzip(state.tflite) < 0.6 * model_size_gzip(fp32)  # …and compress
    assert accuracy(state.tflite, data) > 0.8
    assert mlp.layers[0].get_weights()[0].all()  # the state's original model is untouched


@pytest.mark.slow
def test_prune_then_int8(mlp, data):
    state = run_steps(mlp, data, (PRUNE, PruneParams(final_sparsity=0.5, epochs=1)),
                      (QUANTIZE, QuantizeParams(mode="int8")))
    info = inspect(state.tflite)
    assert info.inputs[0].dtype == "int8" and "float32" not in info.dtypes
    assert tflite_sparsity(state.tflite) == pytest.approx(0.5, abs=0.02)
    assert accuracy(state.tflite, data) > 0.8


@pytest.mark.slow
def test_qat_then_int8_runs_in_litert_and_tflm(mlp, data):
    from bench.runners.tflm import open_model

    state = run_steps(mlp, data, (QAT, QatParams(epochs=1)), (QUANTIZE, QuantizeParams(
        mode="int8")))
    assert state.info["qat"]["fine_tune"]["steps"] == 7
    info = inspect(state.tflite)
    assert info.inputs[0].dtype == "int8" and info.outputs[0].dtype == "int8"
    assert set(info.ops) == {"FULLY_CONNECTED", "SOFTMAX"}
    assert accuracy(state.tflite, data) > 0.8
    micro = open_model(state.tflite, info)
    x = np.zeros((1, 27), dtype=np.int8)
    from ai_edge_litert.interpreter import Interpreter

    lite = Interpreter(model_content=state.tflite)
    lite.allocate_tensors()
    lite.set_tensor(lite.get_input_details()[0]["index"], x)
    lite.invoke()
    expected = lite.get_tensor(lite.get_output_details()[0]["index"])
    assert np.abs(micro.run([x])[0].astype(int) - expected.astype(int)).max() <= 1


#: What TFLite Micro does with each int4 recipe: None = runs; else a phrase of its log.
TFLM_OUTCOME = {
    ("weight_only", None): "DEQUANTIZE",
    ("dynamic", None): "Input type: FLOAT32 with filter type: INT4 not supported",
    ("static_int8_activations", None): None,
    ("static_int8_activations", "channelwise"): "filter->type != kTfLiteInt4",
}


@pytest.mark.slow
@pytest.mark.parametrize(("recipe", "granularity"), list(TFLM_OUTCOME))
def test_int4_recipes(mlp, data, fp32, recipe, granularity):
    from bench.runners.tflm import TFLMError, open_model

    state = run_steps(mlp, data, (INT4, Int4Params(recipe=recipe, granularity=granularity)))
    info = inspect(state.tflite)
    assert "int4" in info.dtypes and state.info["int4"]["float_size"] == len(fp32)
    assert 8_000 < len(state.tflite) < 14_500  # fp32 is about 50 KB
    assert accuracy(state.tflite, data) >= accuracy(fp32, data) - 0.05
    expected = TFLM_OUTCOME[(recipe, granularity)]
    if expected is None:
        assert info.inputs[0].dtype == "int8"
        model = open_model(state.tflite, info)
        assert model.run([np.zeros((1, 27), dtype=np.int8)])[0].shape == (1, 5)
    else:
        with pytest.raises(TFLMError, match="failed to prepare") as failure:
            open_model(state.tflite, info)
        assert expected in str(failure.value)


@pytest.mark.slow
def test_int4_refuses_a_quantized_model(mlp, data):
    state = run_steps(mlp, data, (QUANTIZE, QuantizeParams(mode="int8")))
    with pytest.raises(StepError, match="already holds int8"):
        INT4.apply(state, Int4Params())


@pytest.mark.slow
def test_cluster_shares_weights(mlp, data, fp32):
    state = run_steps(mlp, data, (CLUSTER, ClusterParams(clusters=16, epochs=1)))
    assert all(n <= 16 for n in state.info["cluster"]["distinct_weights"].values())
    assert model_size_gzip(state.tflite) < 0.5 * model_size_gzip(fp32)
    assert accuracy(state.tflite, data) > 0.8


@pytest.mark.slow
def test_steps_say_what_they_need(mlp, data):
    with pytest.raises(StepError, match="needs a data set"):
        PRUNE.apply(BuildState(keras_model=mlp, tflite=None, dataset=None), PruneParams())
    with pytest.raises(StepError, match="before the step that converts"):
        QAT.apply(BuildState(keras_model=mlp, tflite=b"x", dataset=data), QatParams())
    lstm = seeds.build_lstm(seeds.LstmParams(units=(4, 2)), (6, 3), 1)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 6, 3)).astype(np.float32), rng.normal(size=8).astype(np.float32)
    series = Dataset("regression", x, y, x, y, x, y)
    with pytest.raises(StepError, match="qat: tfmot cannot quantize"):
        QAT.apply(BuildState(keras_model=lstm, tflite=None, dataset=series), QatParams())
