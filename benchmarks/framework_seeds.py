"""Is the Keras / PyTorch accuracy gap of ``suites/frameworks.yaml`` real or one seed's luck?

The suite's two trained models over several training seeds: ``digits_cnn`` trained with
tf-keras (:func:`bench.models.train.train`) and ``digits_cnn_torch`` trained with PyTorch
(:func:`bench.models.imported.train_torch`) and brought over by the suite's route
(``torch.onnx.export`` → ``onnx2tf``), both with the suite's ``train:`` (100 epochs, batch 32)
at seeds 0…n−1, on the same data split (digits, split seed 0). Each is converted to a float32
and an int8 ``.tflite`` (the suite's ``fp32`` and ``int8`` variants) and measured on the 269
test images in LiteRT; mean ± sample standard deviation over the seeds, then each seed's value.
Seed 0 is what the suite runs (the ``.onnx`` file is PyTorch's seed 0).

Usage: python benchmarks/framework_seeds.py [--seeds 5] [--epochs 100]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from seed_runs import seed_count, spread, test_correct

from bench import textable
from bench.datasets import digits
from bench.datasets.base import Dataset, NoParams
from bench.models import imported
from bench.models.cnn import DIGITS_CNN
from bench.models.torch_cnn import DIGITS_CNN_TORCH
from bench.models.train import TrainSpec, train
from bench.variants.base import BuildState
from bench.variants.quantize import QUANTIZE, QuantizeParams

VARIANTS = {"fp32": QuantizeParams(mode="fp32"), "int8": QuantizeParams(mode="int8")}


def trained(framework: str, data: Dataset, spec: TrainSpec) -> Any:
    """The tf-keras model the suite's variants start from, for one framework and seed."""
    if framework == "keras":
        return train(DIGITS_CNN, None, data, spec)
    module = imported.train_torch(DIGITS_CNN_TORCH, None, data, spec)
    return imported.torch_to_keras(module, data.input_shape, f"PyTorch seed {spec.seed}")


def right_per_variant(model: Any, data: Dataset, seed: int) -> dict[str, int]:
    results = {}
    for variant, params in VARIANTS.items():
        state = BuildState(keras_model=model, tflite=None, dataset=data, seed=seed)
        QUANTIZE.apply(state, params)
        results[variant] = test_correct(state.tflite, data)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=seed_count, default=5)
    p.add_argument("--epochs", type=int, default=100)
    args = p.parse_args()
    data = digits.load(NoParams(), 0)
    n = len(data.y_test)
    right: dict[str, list[dict[str, int]]] = {"keras": [], "pytorch": []}
    seconds = dict.fromkeys(right, 0.0)
    for seed in range(args.seeds):
        spec = TrainSpec(epochs=args.epochs, batch_size=32, seed=seed)
        for framework, runs in right.items():
            started = time.monotonic()
            runs.append(right_per_variant(trained(framework, data, spec), data, seed))
            seconds[framework] += time.monotonic() - started
            print(f"seed {seed} {framework}: {runs[-1]}", flush=True)
    rows = []
    for variant in VARIANTS:
        for framework, runs in right.items():
            values = [r[variant] / n for r in runs]
            rows.append([framework, variant, spread(values),
                         " ".join(f"{v:.3f}" for v in values),
                         f"{seconds[framework] / args.seeds:.0f}"])
        gaps = [(k[variant] - t[variant]) for k, t in zip(right["keras"], right["pytorch"],
                                                          strict=True)]
        rows.append(["keras − pytorch", variant, spread([g / n for g in gaps]),
                     " ".join(f"{g:+d}" for g in gaps) + " images", ""])
    print(f"\ndigits CNN, {args.epochs} epochs, batch 32; {n} test images (one is "
          f"{1 / n:.4f}); measured in LiteRT; mean ± sample sd over seeds 0…{args.seeds - 1}")
    print(textable.render(["framework", "variant", "accuracy", "per seed", "s per seed"],
                          rows, numeric={4}, style="markdown"))


if __name__ == "__main__":
    main()
