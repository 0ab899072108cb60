"""What the seed studies share (``framework_seeds.py``, ``int4_qat.py``, ``distillation.py``):
the ``--seeds`` option, a mean ± sample standard deviation, and a ``.tflite`` scored in LiteRT."""

from __future__ import annotations

import argparse
import statistics

from bench.datasets.base import Dataset
from bench.runners.io import batch_predict
from bench.runners.litert import LiteRTModel


def seed_count(text: str) -> int:
    """``--seeds``: an integer of at least 2 (a standard deviation needs two)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if n < 2:
        raise argparse.ArgumentTypeError("at least 2 (a standard deviation needs two)")
    return n


def spread(values: list[float]) -> str:
    """Mean ± sample standard deviation, four decimals."""
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def test_correct(model: bytes, data: Dataset) -> int:
    """Test images ``model`` classifies right in LiteRT (int8 input quantized as it asks)."""
    opened = LiteRTModel(model)
    predict = batch_predict(lambda x: opened.run([x])[0], opened.in_specs[0],
                            opened.out_specs[0])
    return int((predict(data.x_test).argmax(axis=1) == data.y_test).sum())
