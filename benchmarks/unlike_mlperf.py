"""Architectures unlike MLPerf Tiny's, measured on emulated boards, against the estimator.

Six families, eleven int8 models (random weights, seeded: an int8 model's cost is its graph):
the STM32 model zoo's HAR networks IGN and GMP (thin 16×1 / 5×1 convolutions over accelerometer
axes, 24 and 48 samples), a fully convolutional 1-D time-series network (FCN, Wang et al. 2017:
Conv1D 8/5/3 + batch norm + global average pooling, two widths), LeNet-5 on 28×28 digits, a
UCI-HAR MLP (561 → 128 → 64 → 6), two widths, and the zoo's MobileNet v2 0.35 (96×96 and
128×128; the 128 one does not fit the emulated M33's 256 KB and fails there). Each runs on
the emulated Cortex-M4F, M33 and M7 (``edgebench run`` with the ``qemu`` devices: TFLite Micro
with CMSIS-NN, instructions counted in QEMU × the core's calibrated cycles per instruction —
``method: emulated``).

1. A table fitted on the MLPerf Tiny results alone estimates each of them: absolute % error
   and the share inside its 80 % interval — first with the interval calibrated on the MLPerf
   Tiny models alone, then (each model left out in turn) with these records' held-out errors
   in the new-model interval (``edgebench calibrate --holdout-records``, as the packaged
   table is made).
2. Leave each family out, nested, on the MLPerf Tiny results plus these emulated records as
   training rows (what ``edgebench calibrate --results CSV --records RUN`` fits).
3. The published STM32 model zoo latencies (``benchmarks/published_models.py``) estimated by a
   table calibrated on the MLPerf Tiny results plus these emulated records as training rows —
   a user who emulated their models once, then estimates them on boards they lack.

Needs the toolchain and QEMU (``make toolchain``) and the third-party sources
(``$EDGEBENCH_THIRD_PARTY``, default ``../shared/third_party``). Models, records and firmware
are cached (``$EDGEBENCH_CACHE``): the first run takes about ten minutes on 2 cores.
Usage: python benchmarks/unlike_mlperf.py [--results CSV] [--models DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
import published_models  # noqa: E402 - a sibling script

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CORES = ["qemu-cortex-m4f", "qemu-cortex-m33", "qemu-cortex-m7"]
#: model id → architecture; the family is the id before ``_``.
ARCHITECTURES = {"ign_24": "ign:24", "ign_48": "ign:48", "gmp_24": "gmp:24", "gmp_48": "gmp:48",
                 "fcn_32": "fcn:32", "fcn_64": "fcn:64", "lenet_5": "lenet",
                 "mlp_64": "mlp:64", "mlp_128": "mlp:128",
                 "mnv2_96": "mnv2:96", "mnv2_128": "mnv2:128"}


def _fcn(width: int) -> Any:
    """FCN for time series (Wang, Yan, Oates 2017), 128 samples × 3 axes, 6 classes."""
    keras = published_models.tf_keras()
    layers = keras.layers
    inputs = x = layers.Input((128, 3))
    for filters, kernel in ((width, 8), (2 * width, 5), (width, 3)):
        x = layers.Conv1D(filters, kernel, padding="same")(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
    outputs = layers.Dense(6, activation="softmax")(layers.GlobalAveragePooling1D()(x))
    return keras.Model(inputs, outputs)


def _lenet() -> Any:
    """LeNet-5 (LeCun et al. 1998) on 28×28×1 digits."""
    keras = published_models.tf_keras()
    layers = keras.layers
    inputs = layers.Input((28, 28, 1))
    x = layers.AveragePooling2D()(layers.Conv2D(6, 5, padding="same", activation="relu")(inputs))
    x = layers.AveragePooling2D()(layers.Conv2D(16, 5, activation="relu")(x))
    x = layers.Dense(84, activation="relu")(layers.Dense(120, activation="relu")(
        layers.Flatten()(x)))
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


def _mlp(width: int) -> Any:
    """An MLP on UCI HAR's 561 features, 6 classes."""
    keras = published_models.tf_keras()
    layers = keras.layers
    inputs = layers.Input((561,))
    x = layers.Dense(width // 2, activation="relu")(layers.Dense(width, activation="relu")(inputs))
    return keras.Model(inputs, layers.Dense(6, activation="softmax")(x))


def _mnv2(size: int) -> Any:
    """The STM32 model zoo's MobileNet v2 0.35 with a 5-class head (its ``flowers`` models),
    without the final softmax: with random weights its logits' scale is beyond what TFLite
    Micro's int8 softmax accepts (it aborts in ``QuantizeMultiplierGreaterThanOne``); the
    softmax of 5 values costs nothing beside the network."""
    keras = published_models.tf_keras()
    base = keras.applications.MobileNetV2((size, size, 3), alpha=0.35, include_top=False,
                                          weights=None)
    x = keras.layers.GlobalAveragePooling2D()(base.output)
    return keras.Model(base.input, keras.layers.Dense(5)(x))


def build(architecture: str) -> Any:
    kind, *args = architecture.split(":")
    published_models.tf_keras().utils.set_random_seed(0)
    if kind in ("ign", "gmp"):
        return published_models.build(architecture)[0]
    if kind == "fcn":
        return _fcn(int(args[0]))
    if kind == "lenet":
        return _lenet()
    if kind == "mlp":
        return _mlp(int(args[0]))
    if kind == "mnv2":
        return _mnv2(int(args[0]))
    raise ValueError(f"unknown architecture {architecture!r}")


def tflite(name: str, folder: Path) -> Path:
    """The int8 .tflite (int8 input and output) of ``name``, built once."""
    return published_models.built_once(folder / f"{name}.tflite", lambda: (
        published_models.int8_tflite(build(ARCHITECTURES[name]), "int8", "int8")))


def emulated_run(work: Path) -> Path:
    """Run every model on every emulated core (resumed where a run was left); its folder."""
    models = {name: tflite(name, work / "models") for name in ARCHITECTURES}
    return published_models.emulated_suite(work, "unlike-mlperf", models, CORES, 3).path


def holdout_data(work: Path) -> Any:
    """The emulated records under ``work`` (this script's folder) as calibration rows, one
    family per model (``records:<model id>``); None when it has none yet."""
    from bench.estimate.records import records_data

    if not (work / "results").is_dir():
        return None
    data = records_data([work / "results"], [ROOT / "devices"], [work / "models"])
    return None if data.rows.empty else data


def describe(holdout: Any, work: Path) -> str:
    if holdout is None:
        return f"none ({work} has no records: run benchmarks/unlike_mlperf.py first)"
    return (f"{len(holdout.rows)} emulated records of {holdout.rows['family'].nunique()} "
            f"models unlike MLPerf Tiny's ({work})")


def estimated_by(table: Any, data: Any) -> pd.DataFrame:
    """Each row with ``table``'s estimate (a new model's interval) and its error."""
    from bench.estimate.data import queries
    from bench.estimate.fit import predict

    qs = queries(data, table.fitted.slots, boards=set())  # no board effect: unseen boards
    p = predict(table.fitted, qs)
    interval = table.intervals["new_model"]
    low, high = interval.bounds(p.log_ms, p.sd)
    rows = data.rows.assign(pred_ms=np.exp(p.log_ms), low_ms=low, high_ms=high)
    return rows.assign(error_pct=(rows["pred_ms"] / rows["latency_ms"] - 1) * 100,
                       inside=(rows["latency_ms"] >= low) & (rows["latency_ms"] <= high))


def architectures(data: Any) -> pd.Series:
    """Each row's architecture (``records:ign_24`` and ``records:ign_48`` → ``records:ign``)."""
    return data.rows["family"].str.split("_").str[0]


def each_left_out(mlperf: Any, emulated: Any) -> pd.DataFrame:
    """Each emulated architecture (all its sizes) estimated by a table fitted on the MLPerf
    Tiny results whose new-model interval is calibrated with the other architectures' records
    only."""
    from bench.estimate.calibrate import calibrate
    from bench.estimate.coefficients import Coefficients

    out = []
    arch = architectures(emulated)
    for family in sorted(set(arch)):
        mask = (arch == family).to_numpy()
        table = Coefficients.from_json(calibrate(mlperf, sources={}, holdout=emulated.subset(
            ~mask)), f"holdout without {family}")
        out.append(estimated_by(table, emulated.subset(mask)))
    return pd.concat(out, ignore_index=True)


def summary(rows: pd.DataFrame) -> str:
    ape = rows["error_pct"].abs()
    return (f"{len(rows)} rows: median absolute error {ape.median():.1f} %, p90 "
            f"{ape.quantile(0.9):.1f} %, {rows['inside'].mean() * 100:.0f} % inside the 80 % "
            f"interval")


def render(rows: pd.DataFrame) -> str:
    from bench import textable
    from bench.results.metrics import Metric

    table = [[r.system.split(" (")[1].split("/")[0], r.core, f"{r.latency_ms:.4g}",
              Metric(r.pred_ms, "", "estimated", r.low_ms, r.high_ms).text(),
              f"{r.error_pct:+.0f} %", "yes" if r.inside else "no"]
             for r in rows.itertuples()]
    return textable.render(["model", "core", "emulated ms", "estimated ms (80 %)", "error",
                            "inside"], table, numeric={2, 4}, style="markdown")


def main() -> None:
    from bench.artifacts.cache import default_root
    from bench.board.reference_models import REFERENCE_FILES
    from bench.estimate.calibrate import calibrate
    from bench.estimate.coefficients import Coefficients
    from bench.estimate.crossval import leave_models_out
    from bench.estimate.data import results_data

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=SHARED / "data" / "mlperf_tiny_results.csv")
    p.add_argument("--models", type=Path, default=SHARED / "models" / "mlperf_tiny")
    args = p.parse_args()
    os.environ.setdefault("EDGEBENCH_THIRD_PARTY", str(SHARED / "third_party"))
    work = default_root() / "unlike-mlperf"

    emulated_run(work)
    emulated = holdout_data(work)
    refs = {b: args.models / f for b, f in REFERENCE_FILES.items()}
    mlperf = results_data(args.results, refs)
    alone = Coefficients.from_json(calibrate(mlperf, sources={}), "MLPerf Tiny results alone")
    shipped = estimated_by(alone, emulated)
    print("1. Emulated latencies (TFLite Micro + CMSIS-NN, QEMU) of architectures unlike "
          "MLPerf Tiny's, estimated by a table fitted on the MLPerf Tiny results alone:\n")
    print(render(shipped))
    print(f"\nInterval calibrated on the MLPerf Tiny models alone: {summary(shipped)}")
    print(f"Interval also calibrated on the other emulated architectures (each left out in "
          f"turn, all its sizes): "
          f"{summary(each_left_out(mlperf, emulated))}\n")

    by_architecture = emulated.subset(np.ones(len(emulated.rows), bool))  # a copy
    by_architecture.rows["family"] = architectures(emulated)
    lmo = leave_models_out(mlperf + by_architecture)  # ign_24 and ign_48 out together
    held = lmo[lmo["family"].str.startswith("records:")]
    held = held.assign(error_pct=(held["pred_ms"] / held["latency_ms"] - 1) * 100,
                       inside=(held["latency_ms"] >= held["low_ms"])
                       & (held["latency_ms"] <= held["high_ms"]))
    print("2. Leave each family out (nested) on the MLPerf Tiny results + these emulated "
          "records:\n")
    for family, g in held.groupby("family"):
        print(f"  {family.split(':')[1]:8s} {summary(g)}")
    print(f"  all      {summary(held)}\n")

    table = Coefficients.from_json(calibrate(mlperf + emulated, sources={}),
                                   "MLPerf Tiny + emulated records")
    print("3. Published STM32 model zoo latencies, estimated by a table calibrated on the MLPerf "
          "Tiny results + these emulated records (IGN and GMP among them, on TFLite Micro):\n")
    print(published_models.render(published_models.predicted_by(table)))


if __name__ == "__main__":
    main()
