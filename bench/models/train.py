"""Train a registered model builder on a data set (tf-keras), and load saved Keras files.

TensorFlow is imported inside the functions; importing this module stays light.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from bench.datasets.base import Dataset
from bench.errors import Strict
from bench.models.base import ModelBuilder
from bench.models.code_check import UnreadableConfig, code_in_file

log = logging.getLogger(__name__)

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


class TrainSpec(Strict):
    """How to train a model (a suite's ``train:`` mapping)."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)
    seed: int = 0
    learning_rate: float = Field(1e-3, gt=0.0)


class ModelFileError(ValueError):
    """A model file that does not exist or cannot be loaded."""


def import_keras() -> Any:
    """``tf_keras``, with legacy Keras selected for TensorFlow first."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras

    return tf_keras


def import_tf() -> Any:
    """``tensorflow``, with legacy Keras selected first."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow

    return tensorflow


def class_count(dataset: Dataset) -> int:
    """Number of classes: ``info["classes"]`` is either the count (int) or the class names."""
    classes = dataset.info.get("classes")
    if isinstance(classes, bool) or classes is None:
        raise ValueError("classification data set has no info['classes'] (an int count or a "
                         "list of class names)")
    count = classes if isinstance(classes, int) else len(classes)
    if count < 2:
        raise ValueError(f"classification needs at least 2 classes, info['classes']={classes!r}")
    top = max(int(np.max(y)) for y in (dataset.y_train, dataset.y_val, dataset.y_test) if y.size)
    if top >= count:
        raise ValueError(f"label {top} out of range for {count} classes")
    return count


def outputs_for(dataset: Dataset) -> int:
    """Output units a model needs for ``dataset``.

    classification → the class count (:func:`class_count`); regression → 1, or the target width
    for 2-D targets; anomaly → the number of input values (the autoencoder reconstructs them).
    """
    if dataset.task == "classification":
        return class_count(dataset)
    if dataset.task == "regression":
        return 1 if dataset.y_train.ndim == 1 else int(dataset.y_train.shape[1])
    if dataset.task == "anomaly":
        return math.prod(dataset.input_shape)
    raise ValueError(f"unknown task {dataset.task!r}")


def targets(dataset: Dataset, split: str, outputs: int) -> np.ndarray:
    x, y = dataset.split(split)
    if dataset.task == "anomaly":
        return x.reshape(len(x), outputs)
    if dataset.task == "regression":
        return y.reshape(len(y), outputs).astype(np.float32)
    return y.astype(np.int32)


def _init_output_bias(model: Any, y_train: np.ndarray) -> None:
    """Start a regressor's output at the target mean (targets stay in their units, e.g. °C)."""
    last = model.layers[-1]
    bias = getattr(last, "bias", None)
    if bias is None or tuple(bias.shape) != (y_train.shape[1],):
        log.debug("output layer %s has no matching bias; not initialised", last.name)
        return
    bias.assign(y_train.mean(axis=0).astype(np.float32))


def _resolve_params(builder: ModelBuilder, params: Any) -> BaseModel:
    if isinstance(params, builder.params):
        return params
    return builder.params.model_validate(params or {})


def build_for(builder: ModelBuilder, params: Any, dataset: Dataset) -> Any:
    """An uncompiled model of ``builder`` shaped for ``dataset``."""
    if dataset.task not in builder.tasks:
        raise ValueError(f"model {builder.name!r} supports {', '.join(builder.tasks)}, "
                         f"not the {dataset.task} data set")
    return builder.build(_resolve_params(builder, params), dataset.input_shape,
                         outputs_for(dataset))


def build_untrained(builder: ModelBuilder, params: Any, seed: int) -> Any:
    """The builder's model with seeded random weights, shaped by its ``default_io``."""
    if builder.default_io is None:
        raise ValueError(f"model builder {builder.name!r} needs a data set to know its input "
                         "shape and outputs")
    keras = import_keras()
    keras.utils.set_random_seed(seed)
    resolved = _resolve_params(builder, params)
    input_shape, outputs = builder.default_io(resolved)
    return builder.build(resolved, tuple(input_shape), outputs)


def train(builder: ModelBuilder, params: Any, dataset: Dataset, spec: TrainSpec) -> Any:
    """Build, compile by task and fit a model; returns the trained tf-keras model.

    classification → sparse categorical cross-entropy (+accuracy); regression → MSE (+MAE),
    with the output bias initialised to the mean training target; anomaly → MSE against the
    input. Seeds Python, NumPy and TensorFlow with ``spec.seed``; validates on the validation
    split. ``params`` may be the builder's params model, a mapping, or None (defaults).
    """
    keras = import_keras()
    keras.utils.set_random_seed(spec.seed)
    model = build_for(builder, params, dataset)
    outputs = outputs_for(dataset)
    y_train = targets(dataset, "train", outputs)
    y_val = targets(dataset, "validation", outputs)
    if dataset.task == "classification":
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    else:
        loss, metrics = "mse", (["mae"] if dataset.task == "regression" else [])
        if dataset.task == "regression":
            _init_output_bias(model, y_train)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=spec.learning_rate),
                  loss=loss, metrics=metrics)

    def log_epoch(epoch: int, logs: dict[str, float] | None) -> None:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in (logs or {}).items())
        log.info("%s epoch %d/%d: %s", builder.name, epoch + 1, spec.epochs, shown)

    x_val = dataset.x_val
    model.fit(
        dataset.x_train, y_train,
        validation_data=(x_val, y_val) if len(x_val) else None,
        epochs=spec.epochs, batch_size=spec.batch_size, shuffle=True, verbose=0,
        callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=log_epoch)],
    )
    return model


def refuse_code(path: Path) -> None:
    """Raise :class:`ModelFileError` naming ``path`` when loading it would run Python code
    (a ``Lambda`` layer, an object from a module outside Keras) or its architecture cannot be
    read to tell; see :mod:`bench.models.code_check`."""

    try:
        found = code_in_file(path)
    except UnreadableConfig as e:
        raise ModelFileError(f"cannot load Keras model {path}: its architecture is not "
                             f"readable ({e})") from None
    if found:
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise ModelFileError(
            f"model file {path} holds code that would run when it is loaded: {shown}; "
            "edgebench does not load it unless the suite sets `trust_code: true` on this model "
            "(only for a file whose source you trust)")


def _safe_mode(enabled: bool) -> Any:
    """TF-Keras's safe-mode scope, which also covers ``.h5`` loading (a no-op if missing)."""
    import contextlib

    try:
        from tf_keras.src.saving.serialization_lib import SafeModeScope
    except ImportError:
        return contextlib.nullcontext()
    return SafeModeScope(enabled)


def load_keras_file(path: str | Path, trust_code: bool = False) -> Any:
    """Load a saved ``.keras`` / ``.h5`` model (uncompiled) with tf-keras.

    Without ``trust_code`` a file that would run Python code when loaded is refused first
    (:func:`refuse_code`) and the loader runs in safe mode; with it, Lambda layers load.
    Raises :class:`ModelFileError` naming ``path`` when it is missing, refused or not loadable.
    """
    p = Path(path)
    if p.suffix.lower() not in KERAS_SUFFIXES:
        raise ModelFileError(f"model file {p}: expected one of {', '.join(KERAS_SUFFIXES)}")
    if not p.is_file():
        raise ModelFileError(f"model file {p} does not exist")
    if not trust_code:
        refuse_code(p)
    keras = import_keras()
    try:
        with _safe_mode(not trust_code):
            return keras.models.load_model(p, compile=False, safe_mode=not trust_code)
    except Exception as exc:  # the loader raises many kinds; keep its reason
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"cannot load Keras model {p}: {reason}") from exc
