"""The variant-step contract: a step transforms a :class:`BuildState`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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


#: Where a step belongs in a variant: ``train`` steps change the Keras model (they go first),
#: a ``convert`` step turns it into the ``.tflite`` (one per variant, after every train step).
Phase = Literal["train", "convert"]


@dataclass(frozen=True)
class VariantStep:
    name: str
    apply: Callable[[BuildState, Any], None]
    params: type[BaseModel] = NoParams
    version: str = "1"
    description: str = ""
    #: None: the step declares no phase and may stand anywhere (a third-party step's default)
    phase: Phase | None = None


def order_problems(steps: Sequence[tuple[str, Phase | None]]) -> list[tuple[int, str]]:
    """``(index, message)`` for each step out of order in a variant's ``(name, phase)`` list:
    a training step after the conversion (it would never reach the converted model) or a second
    conversion (it would convert the first one's output, or replace it)."""
    problems = []
    converted: tuple[int, str] | None = None
    for j, (name, phase) in enumerate(steps):
        if phase == "convert" and converted is not None:
            problems.append((j, f"a second conversion step {name!r} after {converted[1]!r} "
                                f"(steps[{converted[0]}]); a variant converts once"))
        elif phase == "train" and converted is not None:
            problems.append((j, f"training step {name!r} comes after the conversion step "
                                f"{converted[1]!r} (steps[{converted[0]}]), so it would not "
                                "reach the converted model; put training steps first"))
        elif phase == "convert":
            converted = (j, name)
    return problems
