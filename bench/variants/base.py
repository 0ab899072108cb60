"""The variant-step contract: a step transforms a :class:`BuildState`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from bench.datasets.base import Dataset, NoParams


class StepError(Exception):
    """A step that cannot apply to this model (e.g. the converter rejects an op for a mode).

    The message is the reason shown in the failed record."""


@dataclass
class BuildState:
    """What flows through a variant's steps.

    Starts with a trained tf-keras model (``keras_model``) or, for a ``.tflite`` model entry, with
    ``tflite`` bytes already set. A converting step sets ``tflite``; if no step does, the build
    converts to fp32 at the end. ``info`` collects facts for the record (e.g. calibration split and
    sample count) and must stay JSON-serialisable.
    """

    keras_model: Any | None
    tflite: bytes | None
    dataset: Dataset | None
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    #: The trained Keras model of another entry of the suite, by id (for steps whose params
    #: name one in ``model_refs``, e.g. distill's teacher).
    other_model: Callable[[str], Any] | None = None


@dataclass(frozen=True)
class VariantStep:
    name: str
    apply: Callable[[BuildState, Any], None]
    params: type[BaseModel] = NoParams
    version: str = "1"
    description: str = ""
