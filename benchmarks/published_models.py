"""Models beyond the four MLPerf Tiny references: published latencies, predicted by the
calibration procedure fitted on the MLPerf Tiny results alone (never on them).

``benchmarks/data/published_latencies.csv`` lists each published figure with its source (the
STM32 model zoo's READMEs, at a commit). The architectures are rebuilt here from their
published definitions (the zoo's ``ign.py`` / ``gmp.py``, Keras' ``MobileNetV2``) and converted
to int8 TFLite as the zoo did (float or uint8 input, float output); the weights are random —
the graph, not the weights, sets an int8 model's cost. Parameter counts are checked against
the published ones. Built models are cached under ``$EDGEBENCH_CACHE/published``.

Usage: python benchmarks/published_models.py [--results CSV] [--models DIR]
"""

from __future__ import annotations

import csv
import os
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "published_latencies.csv"
#: Published parameter counts of the architectures (the READMEs' "Params" / "MParams").
PUBLISHED_PARAMS = {"ign:24": 3064, "gmp:24": 1528}


def tf_keras() -> Any:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras as keras

    return keras


def _ign(window: int) -> Any:
    """stm32ai-modelzoo human_activity_recognition/src/models/ign.py (4 classes, WISDM)."""
    layers = tf_keras().layers
    inputs = layers.Input((window, 3, 1))
    x = layers.Conv2D(24, (16, 1), activation="relu")(inputs)
    x = layers.MaxPooling2D((3, 1))(x)
    x = layers.Dense(12)(layers.Flatten()(x))
    outputs = layers.Dense(4, activation="softmax")(layers.Dropout(0.5)(x))
    return tf_keras().Model(inputs, outputs)


def _gmp(window: int) -> Any:
    """stm32ai-modelzoo human_activity_recognition/src/models/gmp.py (4 classes, WISDM)."""
    layers = tf_keras().layers
    inputs = layers.Input((window, 3, 1))
    x = layers.Conv2D(16, (5, 1))(layers.BatchNormalization()(inputs))
    x = layers.Conv2D(16, (5, 1))(layers.BatchNormalization()(x))
    x = layers.Dense(4)(layers.Dropout(0.5)(layers.GlobalMaxPooling2D()(x)))
    return tf_keras().Model(inputs, layers.Activation("softmax")(x))


def _mobilenetv2(alpha: float, size: int, classes: int) -> Any:
    """Keras' MobileNetV2 (the zoo's ImageNet models), or its backbone with an average-pool
    and dense head (the zoo's fine-tuned ``fft`` models)."""
    keras = tf_keras()
    if classes == 1000:
        return keras.applications.MobileNetV2((size, size, 3), alpha=alpha, weights=None)
    base = keras.applications.MobileNetV2((size, size, 3), alpha=alpha, include_top=False,
                                          weights=None)
    x = keras.layers.GlobalAveragePooling2D()(base.output)
    x = keras.layers.Dense(classes, activation="softmax")(keras.layers.Dropout(0.3)(x))
    return keras.Model(base.input, x)


def build(architecture: str) -> tuple[Any, bool]:
    """The Keras model of ``architecture`` (``ign:24``, ``mobilenetv2:0.35:128:5``) and whether
    its TFLite input is uint8 (images) rather than float (sensor windows)."""
    kind, *args = architecture.split(":")
    tf_keras().utils.set_random_seed(0)
    if kind == "ign":
        return _ign(int(args[0])), False
    if kind == "gmp":
        return _gmp(int(args[0])), False
    if kind == "mobilenetv2":
        return _mobilenetv2(float(args[0]), int(args[1]), int(args[2])), True
    raise ValueError(f"unknown architecture {architecture!r}")


def int8_tflite(model: Any, input_type: str, output_type: str) -> bytes:
    """``model`` converted to int8 TFLite with ``input_type`` / ``output_type`` (``float32``,
    ``int8``, ``uint8``), calibrated on 8 seeded uniform samples in [-1, 1]."""
    import numpy as np
    import tensorflow as tf

    shape = [1, *model.input_shape[1:]]
    rng = np.random.default_rng(0)

    def samples() -> Any:
        for _ in range(8):
            yield [rng.uniform(-1, 1, shape).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = samples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = getattr(tf, input_type)
    converter.inference_output_type = getattr(tf, output_type)
    return converter.convert()


def built_once(path: Path, make: Callable[[], bytes]) -> Path:
    """``path``, written with ``make()`` the first time (a cached model file)."""
    if not path.is_file():
        data = make()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return path


def emulated_suite(work: Path, name: str, models: dict[str, Path], devices: list[str],
                   repeats: int) -> Any:
    """Run ``models`` (id → .tflite) on the emulated ``devices`` as suite ``name`` under
    ``work`` (resumed where a run was left); the run."""
    import yaml

    from bench.results.store import Store
    from bench.run.session import run_suite
    from bench.suite.spec import load_suite

    suite = work / f"{name}.yaml"
    suite.write_text(yaml.safe_dump({
        "name": name,
        "models": [{"id": m, "path": str(path)} for m, path in models.items()],
        "variants": [{"id": "int8"}], "devices": devices,
        "settings": {"warmup": 1, "repeats": repeats, "timeout_s": 3600}}))
    runs = Store(work / "results").runs()
    return run_suite(load_suite(suite), work / "results", resume=bool(runs))


def tflite(architecture: str) -> Path:
    """The int8 TFLite file of ``architecture`` (built once, then cached)."""
    from bench.artifacts.cache import default_root

    def make() -> bytes:
        model, uint8_input = build(architecture)
        return int8_tflite(model, "uint8" if uint8_input else "float32", "float32")

    return built_once(default_root() / "published" / f"{architecture.replace(':', '_')}.tflite",
                      make)


def rows() -> list[dict[str, str]]:
    with DATA.open(newline="") as f:
        return list(csv.DictReader(f))


def predicted_by(table: Any) -> list[dict[str, Any]]:
    """Each published figure with ``table``'s estimate and interval."""
    from bench.devices.releases import normalise
    from bench.estimate.analysis import analyse
    from bench.estimate.data import core_name
    from bench.estimate.model import Target, estimate

    out = []
    for r in rows():
        path = tflite(r["architecture"])
        analysis = analyse(path.read_bytes(), str(path))
        target = Target(r["board"], core_name(r["core"]) or r["core"], float(r["clock_mhz"]),
                        r["stack"], runtime_version=normalise(r["software"]))
        e = estimate(analysis, target, table)
        lat, published = e.latency, float(r["latency_ms"])
        out.append({**r, "macs": analysis.macs, "params": analysis.params,
                    "estimate_ms": lat.value, "low_ms": lat.low, "high_ms": lat.high,
                    "error_pct": (lat.value / published - 1) * 100,
                    "inside": lat.low <= published <= lat.high,
                    "release_source": e.details["release"]["source"]})
    return out


def render(results: list[dict[str, Any]]) -> str:
    """The published figures next to their estimates, and a summary of the on-chip ones."""
    from bench import textable
    from bench.results.metrics import Metric

    table = [[r["benchmark"], f"{r['macs']:,}", r["board"], f"{r['core']} {r['clock_mhz']} MHz",
              f"{r['software']} ({r['release_source']})", r["memory"],
              f"{float(r['latency_ms']):g}",
              Metric(r["estimate_ms"], "", "estimated", r["low_ms"], r["high_ms"]).text(),
              f"{r['error_pct']:+.0f} %", "yes" if r["inside"] else "no"]
             for r in results]
    text = textable.render(["model", "MACs", "board", "core", "runtime", "memory",
                            "published ms", "estimated ms (80 %)", "error", "inside"], table,
                           numeric={1, 6, 8}, style="markdown")
    on_chip = [r for r in results if r["memory"] == "on-chip"]
    ape = statistics.median(abs(r["error_pct"]) for r in on_chip)
    inside = sum(r["inside"] for r in on_chip)
    return (f"{text}\n\nOn-chip ({len(on_chip)} results): median absolute error "
            f"{ape:.0f} %, {inside} of {len(on_chip)} inside their 80 % interval.")


def reference_only(results_csv: Path, reference_dir: Path, holdout: Any = None) -> str:
    """The published figures predicted by a table fitted on the four MLPerf Tiny models only
    (the whole calibration procedure; ``holdout`` rows, if any, calibrate its new-model
    interval): how the estimator met these architectures unseen."""
    from bench.board.reference_models import REFERENCE_FILES
    from bench.estimate.calibrate import calibrate, model_sources
    from bench.estimate.coefficients import Coefficients
    from bench.estimate.data import results_data

    refs = {b: reference_dir / f for b, f in REFERENCE_FILES.items()}
    data = results_data(results_csv, refs)
    table = calibrate(data, sources={"models": model_sources(refs, data)}, holdout=holdout)
    return render(predicted_by(Coefficients.from_json(table, "fitted on the four references")))


def check_params() -> list[str]:
    """Architectures whose rebuilt parameter count differs from the published one."""
    out = []
    for arch, params in PUBLISHED_PARAMS.items():
        model, _ = build(arch)
        if model.count_params() != params:
            out.append(f"{arch}: {model.count_params()} parameters, published {params}")
    return out


if __name__ == "__main__":
    import argparse

    shared = Path(__file__).resolve().parents[2] / "shared"
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=shared / "data" / "mlperf_tiny_results.csv")
    p.add_argument("--models", type=Path, default=shared / "models" / "mlperf_tiny")
    a = p.parse_args()
    print("\n".join(check_params()) or "parameter counts match the published ones")
    print(reference_only(a.results, a.models))
