"""How steady is int4 QAT's recovery? The compression suite's digits CNN, int4 after fine-tuning
at several seeds, against int8 and post-training int4.

The model is ``suites/compression.yaml``'s ``digits_cnn`` (100 epochs, batch 32, seed 0). The
fine-tuning is its ``int4-int8-qat`` variant (``int4: {recipe: static_int8_activations, qat:
{epochs: 10, batch_size: 32}}``: int4 weights with one scale per tensor, int8 activations) at
fine-tuning seeds 0…n−1 (the suite uses seed 0). Test images right (of 269) are measured with
each ``.tflite`` in LiteRT.

Usage: python benchmarks/int4_qat.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from seed_runs import seed_count, test_correct

from bench import textable
from bench.datasets import digits
from bench.datasets.base import Dataset, NoParams
from bench.models.cnn import DIGITS_CNN
from bench.models.train import TrainSpec, train
from bench.variants.base import BuildState, VariantStep
from bench.variants.int4 import INT4, Int4Params
from bench.variants.quantize import QUANTIZE, QuantizeParams


def built(model: Any, data: Dataset, step: VariantStep, params: Any, seed: int = 0) -> bytes:
    state = BuildState(keras_model=model, tflite=None, dataset=data, seed=seed)
    step.apply(state, params)
    if state.tflite is None:
        raise RuntimeError(f"{step.name} produced no .tflite")
    return state.tflite


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=seed_count, default=5)
    args = p.parse_args()
    data = digits.load(NoParams(), 0)
    n = len(data.y_test)
    model = train(DIGITS_CNN, None, data, TrainSpec(epochs=100, batch_size=32, seed=0))
    int8 = test_correct(built(model, data, QUANTIZE, QuantizeParams(mode="int8")), data)
    rows = [["int8 (post-training)", "", int8, "0"]]
    for granularity in ("tensorwise", "channelwise"):
        params = Int4Params(recipe="static_int8_activations", granularity=granularity)
        right = test_correct(built(model, data, INT4, params), data)
        rows.append([f"int4 + int8 activations, {granularity}, post-training", "", right,
                     f"{right - int8:+d}"])
    qat = Int4Params(recipe="static_int8_activations", qat={"epochs": 10, "batch_size": 32})
    tuned = []
    for seed in range(args.seeds):
        right = test_correct(built(model, data, INT4, qat, seed), data)
        tuned.append(right)
        rows.append(["int4 + int8 activations, tensorwise, QAT 10 epochs", seed, right,
                     f"{right - int8:+d}"])
    print(f"digits_cnn, {n} test images, measured in LiteRT; QAT over {args.seeds} fine-tuning "
          f"seeds: {statistics.mean(tuned):.1f} ± {statistics.stdev(tuned):.1f} right, "
          f"{sum(t >= int8 - 1 for t in tuned)} of {args.seeds} within one image of int8")
    print(textable.render(["variant", "fine-tuning seed", "right", "vs int8"], rows,
                          numeric={1, 2, 3}, style="markdown"))


if __name__ == "__main__":
    main()
