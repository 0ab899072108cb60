"""The data-set contract: a plugin loads a :class:`Dataset` with train/validation/test splits."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from bench.errors import Strict

Task = Literal["classification", "regression", "anomaly"]
SPLITS = ("train", "validation", "test")


class NoParams(Strict):
    """A plugin without parameters."""


@dataclass
class Dataset:
    """Arrays per split. ``x_*`` are float32 model inputs (batch first).

    ``y_*``: class indices (classification), float targets (regression), or 0/1 anomaly labels
    per window (anomaly; the autoencoder's training target is its input).
    ``info`` holds JSON-serialisable facts for the record (feature names, recipe notes); for
    classification, ``info["classes"]`` is the class count or the list of class names.
    """

    task: Task
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of split ``train``, ``validation`` or ``test``."""
        key = {"train": "train", "validation": "val", "test": "test"}.get(name)
        if key is None:
            raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        return getattr(self, f"x_{key}"), getattr(self, f"y_{key}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def save(self, path: Path) -> None:
        arrays = {k: getattr(self, k) for k in
                  ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
        np.savez(path, task=np.array(self.task), info=np.array(json.dumps(self.info)), **arrays)

    @classmethod
    def load(cls, path: Path) -> Dataset:
        with np.load(path, allow_pickle=False) as z:
            return cls(task=str(z["task"]), info=json.loads(str(z["info"])),
                       **{k: z[k] for k in ("x_train", "y_train", "x_val", "y_val",
                                            "x_test", "y_test")})


@dataclass(frozen=True)
class DatasetPlugin:
    """A registered data set: typed parameters and a loader ``load(params, seed)``."""

    name: str
    task: Task
    load: Callable[[Any, int], Dataset]
    params: type[BaseModel] = NoParams
    version: str = "1"  # bump when the recipe changes: it is part of every cache key
    description: str = ""
