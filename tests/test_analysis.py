from __future__ import annotations

import json

import pytest

from bench.artifacts.tflite_info import inspect
from bench.cli import main
from bench.estimate.analysis import analyse, op_class, render_table
from tests.tflite_models import TinyLSTM, TinyModels, build, build_lstm, mlperf_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return build(tmp_path_factory.getbasetemp() / "tflite_models")


# name, params (README: exact), MACs (README: within 1 %)
MLPERF = [("kws_ref_model_int8.tflite", 22_606, 2.66e6),
          ("vww_96_int8.tflite", 210_852, 7.49e6),
          ("ic_resnet8_int8.tflite", 77_708, 12.5e6),
          ("ad01_int8.tflite", 265_864, 264e3)]


@pytest.mark.parametrize(("name", "params", "macs"), MLPERF)
def test_mlperf_totals_match_readme(name: str, params: int, macs: float) -> None:
    data = mlperf_model(name).read_bytes()
    a = analyse(data, name)
    assert a.params == params == inspect(data).params
    assert a.macs == pytest.approx(macs, rel=0.01)
    assert a.dtype == "int8" and a.size == len(data)
    assert sum(a.macs_by_class().values()) == a.macs


def test_kws_layers() -> None:
    a = analyse(mlperf_model("kws_ref_model_int8.tflite").read_bytes())
    first = a.ops[0]  # 10x4 conv, 1 → 64 channels, stride 2: 25x5 outputs
    assert (first.op, first.op_class, first.macs) == ("CONV_2D", "conv", 25 * 5 * 64 * 10 * 4)
    assert first.channels == 64 and first.output_elements == 25 * 5 * 64
    assert first.params == 64 * 10 * 4 + 64 and first.input_bytes == 49 * 10
    dw = a.ops[1]
    assert (dw.op_class, dw.macs, dw.output_bytes) == ("depthwise", 25 * 5 * 64 * 9, 8000)
    pool = next(o for o in a.ops if o.op == "AVERAGE_POOL_2D")
    assert pool.macs == 64 * 25 * 5  # one output per channel × the 25x5 window
    assert [o.macs for o in a.ops if o.op == "RESHAPE"] == [0]
    assert a.ops_by_class() == {"conv": 5, "depthwise": 4, "fc": 1, "elementwise": 0,
                                "other": 3}
    assert a.peak_activation_bytes == 16_000  # two 25x5x64 int8 activations live at once
    assert a.conv_channels == 9 * 64


def test_resnet_adds_are_elementwise() -> None:
    a = analyse(mlperf_model("ic_resnet8_int8.tflite").read_bytes())
    adds = [o for o in a.ops if o.op == "ADD"]
    assert len(adds) == 3 and all(o.op_class == "elementwise" for o in adds)
    assert adds[0].macs == 32 * 32 * 16  # elements


def test_dense_and_fp16(tiny: TinyModels) -> None:
    f32 = analyse(tiny.dense_f32.read_bytes())
    assert f32.macs_by_class()["fc"] == 27 * 128 + 128 * 64 + 64 * 5
    assert f32.dtype == "float32" and f32.params == 12_165
    i8 = analyse(tiny.dense_int8.read_bytes())
    assert i8.dtype == "int8" and i8.macs_by_class()["fc"] == f32.macs_by_class()["fc"]
    f16 = analyse(tiny.dense_f16.read_bytes())  # weights dequantized at run time
    assert {o.op for o in f16.ops if o.op_class == "elementwise"} == {"DEQUANTIZE"}


def test_lstm_macs(tmp_path_factory: pytest.TempPathFactory) -> None:
    lstm: TinyLSTM = build_lstm(tmp_path_factory.getbasetemp() / "tflite_lstm")
    a = analyse(lstm.model.read_bytes())
    op = next(o for o in a.ops if "LSTM" in o.op)
    assert op.op_class == "fc" and op.macs == 12 * 4 * (3 + 8) * 8  # 12 steps, 3 in, 8 units
    assert a.variable_bytes > 0


def test_op_classes_and_errors() -> None:
    assert [op_class(n) for n in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
                                  "UNIDIRECTIONAL_SEQUENCE_LSTM", "MUL", "SOFTMAX")] == [
        "conv", "depthwise", "fc", "fc", "elementwise", "other"]
    with pytest.raises(ValueError, match="not a valid .tflite"):
        analyse(b"12345678garbage", "x.tflite")


def test_inspect_command(capsys: pytest.CaptureFixture[str]) -> None:
    path = mlperf_model("ad01_int8.tflite")
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "FULLY_CONNECTED" in out and "264,192 MACs" in out and "265,864 params" in out
    assert main(["inspect", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["macs"] == 264_192 and len(data["layers"]) == 10
    assert render_table(analyse(path.read_bytes())).count("FULLY_CONNECTED") == 10
