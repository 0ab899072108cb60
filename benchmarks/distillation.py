"""Does distillation pay on the digits? Teacher, student from labels, student distilled; 5 seeds.

The teacher and the students are ``suites/compression.yaml``'s: ``digits_cnn`` with (16, 32)
filters and a dense 64 layer (100 epochs, batch 32, seed 0) teaches a student with (2, 4) filters
and no dense layer. Each student is trained at each seed twice with the same budget: on labels
alone (the suite's ``fp32`` variant) and with the ``distill`` step (its ``distilled`` variant),
both seeded alike, so the difference is paired per seed. Settings beyond the suite's:

* ``suite``: T = 4, α = 0.1, 100 epochs (the compression suite's);
* ``longer``: the same for 300 epochs (both students);
* ``soft``: T = 2, α = 0.5 (more weight on the labels, less softening);
* ``fewer``: a student with (1, 2) filters (less capacity), T = 4, α = 0.1.

Accuracy is measured on the 269 test images with each model's float32 ``.tflite`` in LiteRT, as
the suite measures its ``fp32`` cells; mean ± sample standard deviation over the seeds.

Usage: python benchmarks/distillation.py [--seeds 5] [--settings suite longer soft fewer]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from seed_runs import seed_count, spread

from bench import textable
from bench.datasets import digits
from bench.datasets.base import Dataset, NoParams
from bench.models.cnn import DIGITS_CNN, CnnParams
from bench.models.train import TrainSpec, train
from bench.variants import distill
from bench.variants.base import BuildState
from bench.variants.quantize import convert_fp32

TEACHER = CnnParams(filters=[16, 32], dense=64)


@dataclass(frozen=True)
class Setting:
    student: CnnParams
    epochs: int = 100
    temperature: float = 4.0
    alpha: float = 0.1


SETTINGS = {
    "suite": Setting(CnnParams(filters=[2, 4], dense=0)),
    "longer": Setting(CnnParams(filters=[2, 4], dense=0), epochs=300),
    "soft": Setting(CnnParams(filters=[2, 4], dense=0), temperature=2.0, alpha=0.5),
    "fewer": Setting(CnnParams(filters=[1, 2], dense=0)),
}


def test_correct(model: Any, data: Dataset) -> int:
    """Test images the model's float32 ``.tflite`` classifies right in LiteRT."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=convert_fp32(model, data.x_test.shape[1:]))
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]["index"]
    sink = interpreter.get_output_details()[0]["index"]
    right = 0
    for x, y in zip(data.x_test, data.y_test, strict=True):
        interpreter.set_tensor(source, x[None].astype(np.float32))
        interpreter.invoke()
        right += int(np.argmax(interpreter.get_tensor(sink)) == y)
    return right


def students(setting: Setting, teacher: Any, data: Dataset, seed: int) -> tuple[int, int, int]:
    """(params, right from labels, right distilled) of the setting's student at ``seed``."""
    spec = TrainSpec(epochs=setting.epochs, batch_size=64, seed=seed)
    labels = train(DIGITS_CNN, setting.student, data, spec)
    state = BuildState(keras_model=labels, tflite=None, dataset=data, seed=seed,
                       other_model=lambda _: teacher)
    distill.apply(state, distill.DistillParams(
        teacher="teacher", temperature=setting.temperature, alpha=setting.alpha,
        epochs=setting.epochs, batch_size=64))
    return (int(labels.count_params()), test_correct(labels, data),
            test_correct(state.keras_model, data))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=seed_count, default=5)
    p.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    args = p.parse_args()
    data = digits.load(NoParams(), 0)
    n = len(data.y_test)
    teacher = train(DIGITS_CNN, TEACHER, data, TrainSpec(epochs=100, batch_size=32, seed=0))
    teacher_right = test_correct(teacher, data)
    rows = [["teacher: (16, 32) filters, dense 64, 100 epochs", f"{teacher.count_params():,}",
             f"{teacher_right / n:.4f} (seed 0)", "", "", "", ""]]
    for name in args.settings:
        setting, started = SETTINGS[name], time.monotonic()
        runs = [students(setting, teacher, data, seed) for seed in range(args.seeds)]
        params = runs[0][0]
        labels = [r[1] / n for r in runs]
        distilled = [r[2] / n for r in runs]
        gained = [r[2] - r[1] for r in runs]
        rows.append([f"{name}: student {tuple(setting.student.filters)} filters, "
                     f"{setting.epochs} epochs, T = {setting.temperature:g}, "
                     f"α = {setting.alpha:g}", f"{params:,}", spread(labels), spread(distilled),
                     spread([d - label for d, label in zip(distilled, labels, strict=True)]),
                     " ".join(f"{g:+d}" for g in gained), f"{time.monotonic() - started:.0f}"])
    print(f"Distillation on the digits ({n} test images: one image is {1 / n:.4f}); accuracy "
          f"measured with float32 .tflite in LiteRT; mean ± sample sd over {args.seeds} seeds")
    print(textable.render(["model / setting", "params", "from labels", "distilled",
                           "Δ paired", "Δ images per seed", "wall s"], rows, numeric={1, 6},
                          style="markdown"))


if __name__ == "__main__":
    main()
