"""Harness overhead: the median latency the litert runner reports ÷ the median of a bare
``invoke()`` loop on the same interpreter, in the same process. Target ≤ 1.05.

The bare loop times blocks of invokes with one clock read per block (no per-call timer), and the
two are interleaved over several rounds so that drift on a shared machine hits both alike.
Usage: python benchmarks/harness_overhead.py
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.runners.base import RunRequest
from bench.runners.io import latency_stats, sample_inputs, timed_invokes
from bench.runners.litert import LiteRTModel, measure

ROOT = Path(__file__).resolve().parents[1]
MLPERF = ROOT.parent / "shared" / "models" / "mlperf_tiny"
ROUNDS, REPEATS, BLOCK = 7, 400, 20


def har_mlp_tflite() -> bytes:
    """The HAR MLP's architecture (27 → 128 → 64 → 5), float32, batch 1."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Input((27,)), keras.layers.Dense(128, "relu"),
                              keras.layers.Dense(64, "relu"), keras.layers.Dense(5, "softmax")])
    fn = tf.function(lambda x: model(x)).get_concrete_function(tf.TensorSpec([1, 27]))
    return tf.lite.TFLiteConverter.from_concrete_functions([fn], model).convert()


def bare_median_ms(invoke, n: int) -> float:  # noqa: ANN001 - the interpreter's invoke
    per_call = []
    for _ in range(n // BLOCK):
        t0 = time.perf_counter_ns()
        for _ in range(BLOCK):
            invoke()
        per_call.append((time.perf_counter_ns() - t0) / BLOCK)
    return statistics.median(per_call) / 1e6


def overhead(name: str, data: bytes) -> None:
    model = LiteRTModel(data, {}, name)
    model.set_inputs(sample_inputs(None, model.in_specs, 1, 0)[0])
    invoke = model.interpreter.invoke
    ratios, harness, bare = [], [], []
    for _ in range(ROUNDS):
        h = latency_stats(timed_invokes(invoke, 10, REPEATS), "measured")["latency_p50"].value
        b = bare_median_ms(invoke, REPEATS)
        harness.append(h)
        bare.append(b)
        ratios.append(h / b)
    with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
        f.write(data)
        f.flush()
        full = measure(RunRequest(artifact=Path(f.name), dataset=None, warmup=10,
                                  repeats=REPEATS))["latency_p50"].value
    print(f"{name:28s} harness p50 {statistics.median(harness) * 1e3:9.2f} µs   "
          f"bare loop {statistics.median(bare) * 1e3:9.2f} µs   "
          f"ratio {statistics.median(ratios):.3f} (rounds {min(ratios):.3f}–{max(ratios):.3f})   "
          f"runner.measure p50 {full * 1e3:9.2f} µs")


def main() -> None:
    print(f"harness overhead (target ratio ≤ 1.05; {ROUNDS} rounds × {REPEATS} invokes)")
    overhead("har_mlp fp32 (27-128-64-5)", har_mlp_tflite())
    for name in ("kws_ref_model_int8.tflite", "ad01_int8.tflite"):
        if (MLPERF / name).exists():
            overhead(name, (MLPERF / name).read_bytes())
        else:
            print(f"{name}: skipped ({MLPERF} not found)")


if __name__ == "__main__":
    main()
