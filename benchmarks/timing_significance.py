"""How trustworthy are compares? On the HAR MLP int8 (27 → 128 → 64 → 5) on host LiteRT:

The test is :func:`bench.results.significance.on_samples` (a two-level bootstrap: processes and
their durations), as ``edgebench compare`` runs it.

* false positives: 20 compares of the cell against itself, each between two fresh runs (three
  worker processes each, as ``edgebench run`` times it) — how many are flagged significant at
  α = 0.05 (target ≤ 1 of 20);
* power: the same pairs with a slowdown of 2 %, 5 % and 10 % injected into the second run's
  raw samples (each duration × 1.02, …): how often the slowdown is detected (significant, with
  the right sign).

Usage: python benchmarks/timing_significance.py [--pairs 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

from bench.results.significance import ALPHA, on_samples
from bench.runners.base import RunRequest
from bench.worker import call

INJECTED = (0.02, 0.05, 0.10)
PROCESSES = 3


def har_mlp_int8(folder: Path) -> Path:
    """The HAR MLP architecture, full-integer int8 (calibrated on standard-normal inputs)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Input((27,)), keras.layers.Dense(128, "relu"),
                              keras.layers.Dense(64, "relu"), keras.layers.Dense(5, "softmax")])
    fn = tf.function(lambda x: model(x)).get_concrete_function(tf.TensorSpec([1, 27]))
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    conv.representative_dataset = lambda: ([rng.standard_normal((1, 27), np.float32)]
                                           for _ in range(100))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    path = folder / "har_mlp_int8.tflite"
    path.write_bytes(conv.convert())
    return path


def fresh_run(artifact: Path) -> list[np.ndarray]:
    """One run's raw durations, per worker process (``PROCESSES`` of the litert measure
    phase)."""
    request = RunRequest(artifact=artifact, dataset=None, warmup=10, repeats=200).to_json()
    out = [call("bench.runners.phase:run_phase",
                {"ref": "bench.runners.litert:measure", "request": request}, 120)["samples_ns"]
           for _ in range(PROCESSES)]
    return [np.asarray(s, np.float64) for s in out]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=20)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        artifact = har_mlp_int8(Path(tmp))
        runs = [fresh_run(artifact) for _ in range(args.pairs + 1)]
    medians = [float(np.median(np.concatenate(r))) / 1e3 for r in runs]
    print(f"HAR MLP int8 on host LiteRT: {args.pairs + 1} fresh runs of {PROCESSES} processes × "
          f"200 invokes; run medians {min(medians):.2f}–{max(medians):.2f} µs")
    pairs = list(zip(runs, runs[1:], strict=False))
    same = [on_samples(a, b) for a, b in pairs]
    flagged = sum(t.p_value <= ALPHA for t in same)
    print(f"false positives: {flagged} of {len(pairs)} self-compares significant at "
          f"α = {ALPHA} (target ≤ 1 of 20); |change| median "
          f"{np.median([abs(t.change) for t in same]):.1%}")
    for slowdown in INJECTED:
        tests = [on_samples(a, [p * (1 + slowdown) for p in b]) for a, b in pairs]
        found = sum(t.p_value <= ALPHA and t.change > 0 for t in tests)
        print(f"injected +{slowdown:.0%}: detected in {found} of {len(pairs)} "
              f"({found / len(pairs):.0%}); measured change median "
              f"{np.median([t.change for t in tests]):+.1%}")


if __name__ == "__main__":
    main()
