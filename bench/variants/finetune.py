"""Shared fine-tuning for the steps that retrain a Keras model (``prune``, ``qat``, ``cluster``).

Targets and losses follow :func:`bench.models.train.train`: classification → sparse categorical
cross-entropy, regression → MSE, anomaly → MSE against the input. TensorFlow and the Model
Optimization toolkit are imported inside the functions.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np
from pydantic import Field

from bench.datasets.base import Dataset
from bench.errors import BatchSize, Epochs, Strict
from bench.models.train import import_keras, outputs_for, targets
from bench.variants.base import BuildState, StepError

log = logging.getLogger(__name__)


class FineTune(Strict):
    """Fine-tuning settings common to the retraining steps."""

    epochs: Epochs = 2
    batch_size: BatchSize = 64
    learning_rate: float = Field(1e-3, gt=0.0)


def import_tfmot() -> Any:
    """``tensorflow_model_optimization`` on tf-keras; :class:`StepError` if it is missing."""
    import_keras()  # selects legacy Keras before TensorFlow loads
    try:
        with warnings.catch_warnings():  # its version check uses deprecated distutils
            warnings.simplefilter("ignore", DeprecationWarning)
            import tensorflow_model_optimization as tfmot
    except ImportError as exc:
        raise StepError("this step needs tensorflow-model-optimization "
                        "(pip install tensorflow-model-optimization)") from exc
    return tfmot


def require(state: BuildState, step: str) -> tuple[Any, Dataset]:
    """The state's Keras model and data set, or a :class:`StepError` saying what is missing."""
    if state.keras_model is None:
        raise StepError(f"{step} needs a Keras model; a .tflite model entry cannot be retrained")
    if state.tflite is not None:
        raise StepError(f"{step} must come before the step that converts the model")
    if state.dataset is None:
        raise StepError(f"{step} fine-tunes the model and needs a data set (the model entry "
                        "has none)")
    return state.keras_model, state.dataset


def clone(model: Any) -> Any:
    """A copy of ``model`` with the same weights (the state's model is left untouched)."""
    keras = import_keras()
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def steps_per_epoch(dataset: Dataset, batch_size: int) -> int:
    return max(1, math.ceil(len(dataset.x_train) / batch_size))


def fit(model: Any, dataset: Dataset, params: FineTune, seed: int, name: str,
        callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Compile ``model`` by task and fit it on the training split; returns facts for the record
    (settings, steps, final training and validation figures)."""
    keras = import_keras()
    keras.utils.set_random_seed(seed)
    outputs = outputs_for(dataset)
    if dataset.task == "classification":
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    else:
        loss, metrics = "mse", (["mae"] if dataset.task == "regression" else [])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=params.learning_rate),
                  loss=loss, metrics=metrics)
    y_train = targets(dataset, "train", outputs)
    validation = None
    if len(dataset.x_val):
        validation = (dataset.x_val, targets(dataset, "validation", outputs))

    def log_epoch(epoch: int, logs: dict[str, float] | None) -> None:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in (logs or {}).items())
        log.info("%s fine-tune epoch %d/%d: %s", name, epoch + 1, params.epochs, shown)

    history = model.fit(
        dataset.x_train, y_train, validation_data=validation, epochs=params.epochs,
        batch_size=params.batch_size, shuffle=True, verbose=0,
        callbacks=[*(callbacks or []), keras.callbacks.LambdaCallback(on_epoch_end=log_epoch)],
    )
    final = {k: round(float(v[-1]), 6) for k, v in history.history.items()
             if v and np.isfinite(v[-1])}
    settings = {k: getattr(params, k) for k in FineTune.model_fields}
    return {**settings, "steps": params.epochs * steps_per_epoch(
        dataset, params.batch_size), "final": final}


def reason(exc: BaseException) -> str:
    """The first line of an exception message (tfmot's errors are long), or its type."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
