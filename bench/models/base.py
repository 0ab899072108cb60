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
    TensorFlow inside the call, never at module import."""

    name: str
    build: Callable[[Any, tuple[int, ...], int], Any]
    tasks: tuple[Task, ...]
    params: type[BaseModel] = NoParams
    version: str = "1"
    description: str = ""
