from __future__ import annotations

import gzip

import pytest

from bench.artifacts.tflite_info import inspect, model_size, model_size_gzip
from tests.tflite_models import TinyModels, build, mlperf_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return build(tmp_path_factory.getbasetemp() / "tflite_models")


def test_dense_model_facts(tiny: TinyModels) -> None:
    f32 = inspect(tiny.dense_f32.read_bytes())
    assert f32.params == 27 * 128 + 128 + 128 * 64 + 64 + 64 * 5 + 5 == 12_165
    assert f32.dtypes == ("float32",)
    assert f32.ops == ("FULLY_CONNECTED", "SOFTMAX")
    assert f32.op_counts == {"FULLY_CONNECTED": 3, "SOFTMAX": 1}
    assert [(t.shape, t.dtype, t.quantized) for t in f32.inputs] == [((1, 27), "float32", False)]
    assert [(t.shape, t.dtype) for t in f32.outputs] == [((1, 5), "float32")]
    assert not f32.has_float16 and not f32.has_variables

    f16 = inspect(tiny.dense_f16.read_bytes())
    assert f16.has_float16 and "DEQUANTIZE" in f16.ops and f16.params == 12_165

    i8 = inspect(tiny.dense_int8.read_bytes())
    assert i8.params == 12_165 and i8.dtypes == ("int32", "int8")
    (inp,), (out,) = i8.inputs, i8.outputs
    assert inp.dtype == out.dtype == "int8" and inp.quantized and inp.scale > 0
    assert out.scale == pytest.approx(1 / 256) and out.zero_point == -128  # softmax output


@pytest.mark.parametrize(("name", "params"), [
    ("kws_ref_model_int8.tflite", 22_606),
    ("vww_96_int8.tflite", 210_852),
    ("ic_resnet8_int8.tflite", 77_708),
    ("ad01_int8.tflite", 265_864),
])
def test_mlperf_params_match_readme(name: str, params: int) -> None:
    info = inspect(mlperf_model(name).read_bytes())
    assert info.params == params
    assert info.inputs[0].dtype == "int8" and info.inputs[0].quantized


def test_kws_structure() -> None:
    info = inspect(mlperf_model("kws_ref_model_int8.tflite").read_bytes())
    assert info.ops == ("AVERAGE_POOL_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
                        "RESHAPE", "SOFTMAX")
    assert info.inputs[0].shape == (1, 49, 10, 1)
    assert info.outputs[0].shape == (1, 12)


def test_sizes(tiny: TinyModels) -> None:
    data = tiny.dense_f32.read_bytes()
    assert model_size(data) == len(data) == inspect(data).size
    assert model_size_gzip(data) == len(gzip.compress(data, compresslevel=9, mtime=0))
    assert 0 < model_size_gzip(data) < len(data)


@pytest.mark.parametrize("corrupt", [
    pytest.param(lambda d: b"", id="empty"),
    pytest.param(lambda d: b"not a model at all", id="text"),
    pytest.param(lambda d: d[:4] + b"XXXX" + d[8:], id="identifier"),
    pytest.param(lambda d: d[:120], id="truncated"),
])
def test_corrupt_bytes_raise_clear_error(tiny: TinyModels, corrupt: object) -> None:
    data = corrupt(tiny.dense_f32.read_bytes())  # type: ignore[operator]
    with pytest.raises(ValueError, match=r"m\.tflite is not a valid \.tflite flatbuffer: "):
        inspect(data, source="m.tflite")

