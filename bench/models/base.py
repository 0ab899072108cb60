"""The model-builder contract: typed parameters and ``build(params, input_shape, outputs)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from bench.datasets.base import NoParams, Task


@dataclass(frozen=True)
class ModelBuilder:
    """A registered builder. ``build`` returns an uncompiled tf-keras model whose input is
    ``input_shape`` (no batch axis) and whose output has ``outputs`` units; it imports
    TensorFlow inside the call, never at module import.

    ``default_io(params) -> (input_shape, outputs)`` shapes the model when a suite gives no data
    set: it is then built untrained (seeded random weights) — enough for size, arena and
    latency, not for task metrics. Builders without it need a data set."""

    name: str
    build: Callable[[Any, tuple[int, ...], int], Any]
    tasks: tuple[Task, ...]
    params: type[BaseModel] = NoParams
    version: str = "1"
    description: str = ""
    default_io: Callable[[Any], tuple[tuple[int, ...], int]] | None = None
    framework: str = "keras"  # or "sklearn": trained with scikit-learn, deployed as C
