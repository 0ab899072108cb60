"""LiteRT and TFLite Micro runners, their shared helpers and the task metrics (real runtimes)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.artifacts.tflite_info import inspect, main_graph_ops
from bench.datasets.base import Dataset
from bench.results.metrics import task_metrics
from bench.runners import io, litert, tflm
from bench.runners.base import RunnerSkip, RunRequest
from tests.tflite_models import TinyLSTM, TinyModels, build, build_lstm, mlperf_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return build(tmp_path_factory.getbasetemp() / "tflite_models")


# --- helpers ------------------------------------------------------------------------------------

def test_quantize_round_trip_and_clip() -> None:
    spec = io.IOSpec(shape=(1, 3), dtype=np.dtype(np.int8), scale=0.5, zero_point=-10)
    q = io.quantize(np.array([0.0, 1.26, 1000.0, -1000.0]), spec)
    assert q.dtype == np.int8 and q.tolist() == [-10, -7, 127, -128]
    assert io.dequantize(q[:2], spec).tolist() == [0.0, 1.5]
    spec16 = io.IOSpec(shape=(1,), dtype=np.dtype(np.int16), scale=0.001, zero_point=0)
    assert io.quantize(np.array([40.0]), spec16).tolist() == [32767]
    fspec = io.IOSpec(shape=(1,), dtype=np.dtype(np.float32))
    assert io.quantize(np.array([1.25]), fspec).dtype == np.float32


def test_generated_inputs_are_seeded_and_typed() -> None:
    spec = io.IOSpec(shape=(1, 49, 10, 1), dtype=np.dtype(np.int8), scale=0.5)
    a, b = io.generated_inputs(spec, 3, seed=7), io.generated_inputs(spec, 3, seed=7)
    assert a.shape == (3, 1, 49, 10, 1) and a.dtype == np.int8 and np.array_equal(a, b)
    f = io.generated_inputs(io.IOSpec(shape=(1, 4), dtype=np.dtype(np.float32)), 2, 0)
    assert f.dtype == np.float32 and f.shape == (2, 1, 4)


def test_latency_stats() -> None:
    stats = io.latency_stats([1_000_000 * k for k in range(1, 101)], "measured")
    assert set(stats) == {"latency_p50", "latency_p90", "latency_p99", "latency_mean",
                          "latency_std", "latency_n"}
    assert stats["latency_p50"].value == pytest.approx(50.5)
    assert stats["latency_mean"].value == pytest.approx(50.5)
    assert stats["latency_p99"].unit == "ms" and stats["latency_n"].value == 100
    assert stats["latency_n"].unit == "" and stats["latency_p90"].method == "measured"
    with pytest.raises(ValueError):
        io.latency_stats([], "measured")


def test_captured_fds_sees_native_writes() -> None:
    with io.captured_fds() as out:
        os.write(1, b"to fd one\n")
        os.write(2, b"to fd two\n")
    assert "to fd one" in out[0] and "to fd two" in out[0]


# --- task metrics -------------------------------------------------------------------------------

def _ds(task: str, x: np.ndarray, y: np.ndarray, xv: np.ndarray | None = None,
        yv: np.ndarray | None = None) -> Dataset:
    xv = x if xv is None else xv
    yv = y if yv is None else yv
    return Dataset(task, x, y, xv, yv, x, y)  # type: ignore[arg-type]


def test_classification_and_regression_metrics() -> None:
    x = np.eye(4, dtype=np.float32)
    m = task_metrics(_ds("classification", x, np.array([0, 1, 2, 0])), lambda v: v, "measured")
    assert m["accuracy"].value == 0.75 and m["accuracy"].method == "measured"
    assert m["f1_macro"].value == pytest.approx((2 / 3 + 1 + 1 + 0) / 4)
    r = task_metrics(_ds("regression", x, np.array([1.0, 0.0, 0.0, 3.0])),
                     lambda v: v[:, :1], "measured")
    assert r["mae"].value == pytest.approx(0.75) and r["rmse"].value == pytest.approx(1.5)
    assert r["mae"].unit == "°C"


def test_anomaly_threshold_from_validation_smallest_tie() -> None:
    # Score = MSE(output, input); the fake autoencoder outputs zeros, so score = mean(x**2).
    val_scores = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    x_val = np.sqrt(val_scores)[:, None].astype(np.float32)
    y_val = np.array([0, 1, 0, 0, 1])  # F1 ties at t=2 and t=5 (both 2/3): the smallest wins
    test_scores = np.array([1.5, 2.5, 3.5, 6.0])
    x_test = np.sqrt(test_scores)[:, None].astype(np.float32)
    ds = Dataset("anomaly", x_val, y_val, x_val, y_val, x_test, np.array([0, 0, 1, 1]))
    m = task_metrics(ds, np.zeros_like, "tflm")
    assert m["threshold"].value == pytest.approx(2.0)
    assert m["precision"].value == pytest.approx(2 / 3) and m["recall"].value == 1.0
    assert m["auc"].value == 1.0 and m["f1"].value == pytest.approx(0.8)
    assert set(m) == {"auc", "precision", "recall", "f1", "threshold"}


# --- LiteRT -------------------------------------------------------------------------------------

def test_litert_float_accuracy_matches_keras(tiny: TinyModels) -> None:
    m = litert.evaluate(RunRequest(tiny.dense_f32, tiny.classification))
    assert m["accuracy"].value == pytest.approx(tiny.keras_accuracy)
    assert m["accuracy"].method == "measured" and set(m) == {"accuracy", "f1_macro"}
    q = litert.evaluate(RunRequest(tiny.dense_int8, tiny.classification))
    assert abs(q["accuracy"].value - tiny.keras_accuracy) <= 0.05


def test_litert_without_dataset_has_no_task_metrics(tiny: TinyModels) -> None:
    assert litert.evaluate(RunRequest(tiny.dense_int8, None)) == {}


def test_litert_measure(tiny: TinyModels) -> None:
    m = litert.measure(RunRequest(tiny.dense_int8, tiny.classification, warmup=3, repeats=50))
    assert m["latency_n"].value == 50 and m["latency_p50"].method == "measured"
    assert 0 < m["latency_p50"].value <= m["latency_p99"].value
    # LiteRT's Python interpreter has no profiler: the record says so, with no layers
    assert m.details == {"layers_reason": litert.NO_PROFILER["litert"]}


def test_litert_corrupt_model_raises_clear_error(tmp_path: Path, tiny: TinyModels) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="bad.tflite is not a valid .tflite flatbuffer"):
        litert.measure(RunRequest(bad, None, warmup=1, repeats=1))
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(tiny.dense_f32.read_bytes()[:200])
    with pytest.raises(RuntimeError, match="LiteRT cannot load"):
        litert.measure(RunRequest(truncated, None, warmup=1, repeats=1))


@pytest.mark.skipif(importlib.util.find_spec("tflite_runtime") is not None,
                    reason="tflite-runtime is installed here")
def test_tflite_runtime_missing_skips(tiny: TinyModels) -> None:
    request = RunRequest(tiny.dense_f32, None, options={"runtime": "tflite-runtime"})
    with pytest.raises(RunnerSkip, match="tflite-runtime cannot be imported"):
        litert.measure(request)
    assert "tflite-runtime" in (litert.unsupported(b"", request.options) or "")
    assert litert.unsupported(b"", {}) is None


@pytest.mark.slow
def test_stateful_lstm_is_reset_between_samples(tmp_path_factory: pytest.TempPathFactory
                                                ) -> None:
    lstm: TinyLSTM = build_lstm(tmp_path_factory.getbasetemp() / "tflite_lstm")
    assert inspect(lstm.model.read_bytes()).has_variables
    ds = Dataset.load(lstm.regression)
    keras_mae = np.abs(lstm.keras_pred - ds.y_test).mean()
    for run in (litert.evaluate, tflm.evaluate):
        m = run(RunRequest(lstm.model, lstm.regression))
        assert m["mae"].value == pytest.approx(keras_mae, abs=1e-4)


# --- TFLite Micro -------------------------------------------------------------------------------

def test_tflm_fp16_rule(tiny: TinyModels) -> None:
    assert tflm.unsupported(tiny.dense_f16.read_bytes(), {}) == tflm.FP16_REASON
    assert tflm.unsupported(tiny.dense_int8.read_bytes(), {}) is None
    assert tflm.unsupported(b"garbage", {}) is None  # left to the phase: a failed record


def test_tflm_really_fails_on_fp16(tiny: TinyModels) -> None:
    """Keeps the skip rule honest: if TFLite Micro gains the kernel, this test fails."""
    code = ("import sys; from tflite_micro import runtime; "
            "runtime.Interpreter.from_bytes(open(sys.argv[1], 'rb').read(), arena_size=1 << 22)")
    proc = subprocess.run([sys.executable, "-c", code, str(tiny.dense_f16)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0
    assert "DEQUANTIZE" in proc.stderr + proc.stdout


def test_tflm_evaluate_with_dataset(tiny: TinyModels) -> None:
    m = tflm.evaluate(RunRequest(tiny.dense_int8, tiny.classification))
    lite = litert.evaluate(RunRequest(tiny.dense_int8, tiny.classification))
    assert {"arena_used", "arena_min", "output_max_diff", "accuracy", "f1_macro"} <= set(m)
    assert all(v.method == "tflm" for v in m.values())
    # LiteRT runs int8 through XNNPACK, whose requantization rounds unlike the reference kernels
    assert m["output_max_diff"].unit == "steps" and m["output_max_diff"].value <= 8
    assert abs(m["accuracy"].value - lite["accuracy"].value) <= 0.02
    assert m["arena_min"].value % tflm.GRANULE == 0
    # … and per layer (TFLite Micro keeps every tensor in a second interpreter): every layer
    # within a step of LiteRT's built-in kernels, the difference XNNPACK's
    agreement = m.details["agreement"]
    layers = agreement["layers"]
    assert agreement["method"] == "tflm" and agreement["reference_check"] == 0
    assert agreement["output_diff"] == m["output_max_diff"].value  # the worst input's
    assert [la["op"] for la in layers] == [o.op for o in main_graph_ops(
        tiny.dense_int8.read_bytes())]
    assert agreement["compared"] == agreement["layers_total"] == len(layers)
    assert agreement["builtin_first_layer"] is None
    beyond = [la["index"] for la in layers if la["differs"]]
    assert all(la["differs"] == (la["max_diff"] > 1) for la in layers)
    assert agreement["first_layer"] == (beyond[0] if beyond else None)


def test_tflm_float_layers_agree_with_litert_within_float_rounding(tiny: TinyModels) -> None:
    agreement = tflm.evaluate(RunRequest(tiny.dense_f32, None)).details["agreement"]
    assert agreement["layers"] and all(la["unit"] == "" for la in agreement["layers"])
    assert agreement["first_layer"] is None
    assert agreement["verdict"].startswith("no layer differs")


def test_tflm_arena_ad01() -> None:
    path = mlperf_model("ad01_int8.tflite")
    m = tflm.evaluate(RunRequest(path, None))
    used, least = int(m["arena_used"].value), int(m["arena_min"].value)
    assert 0 < used <= least < 2 * used and m["arena_used"].unit == "B"
    assert tflm.probe(path, least) is not None
    assert tflm.probe(path, least - tflm.GRANULE) is None  # a probe below arena_min fails
    assert "accuracy" not in m and "auc" not in m  # no data set: no task metrics


def test_tflm_hybrid_float_model_is_a_skip_with_its_reason() -> None:
    path = mlperf_model("kws_ref_model_float32.tflite")
    assert "hybrid (dynamic-range) model: CONV_2D" in (tflm.unsupported(path.read_bytes(), {})
                                                       or "")
    with pytest.raises(RunnerSkip, match="hybrid"):
        tflm.measure(RunRequest(path, None, warmup=1, repeats=1))
    with pytest.raises(tflm.TFLMRefused, match="CONV_2D .*failed to prepare"):
        tflm.open_model(path.read_bytes(), inspect(path.read_bytes()))


def test_the_host_runtimes_really_have_no_profiler() -> None:
    """Keeps the records' ``layers_reason`` honest: if a Python interpreter gains a profiling
    API, this test fails (and the runner should use it)."""
    import inspect as pyinspect

    from ai_edge_litert.interpreter import Interpreter
    from tflite_micro.python.tflite_micro import runtime

    for cls in (Interpreter, runtime.Interpreter):
        names = [n for n in dir(cls) if "profil" in n.lower()]
        names += [p for n in ("__init__", "from_bytes") if hasattr(cls, n)
                  for p in pyinspect.signature(getattr(cls, n)).parameters
                  if "profil" in p and "delegate" not in p]
        assert names == [], cls


def test_tflm_measure_and_corrupt(tiny: TinyModels, tmp_path: Path) -> None:
    m = tflm.measure(RunRequest(tiny.dense_int8, None, warmup=2, repeats=20))
    assert m["latency_n"].value == 20 and m["latency_p50"].method == "tflm"
    assert m.details == {"layers_reason": tflm.NO_PROFILER["tflm"]}
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"TFL3" * 4)
    with pytest.raises(ValueError, match="not a valid .tflite flatbuffer"):
        tflm.evaluate(RunRequest(bad, None))
