"""``distill``: knowledge distillation — the model (the student) learns again, from a teacher.

The teacher is another model entry of the suite (trained first, from the cache). The student
starts from fresh, seeded weights of its own architecture and trains for ``epochs`` on:

* classification: ``α · CE(y, s) + (1 − α) · T² · KL(t_T ‖ s_T)``, where ``p_T`` is the
  distribution softened at temperature ``T`` (``p_T ∝ p^(1/T)``, i.e. softmax of log p / T);
* regression and autoencoders: MSE against ``α · target + (1 − α) · teacher output``.

The student's own ``fp32`` variant (trained on labels alone) is the baseline beside it.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from bench.errors import BatchSize, Epochs, Strict
from bench.models.train import import_keras, import_tf, outputs_for, targets
from bench.variants.base import BuildState, StepError, VariantStep

log = logging.getLogger(__name__)
EPS = 1e-7


class DistillParams(Strict):
    #: Step parameters that name another model entry of the suite (resolved by the harness).
    model_refs: ClassVar[tuple[str, ...]] = ("teacher",)

    teacher: str
    temperature: float = Field(4.0, gt=0)
    alpha: float = Field(0.1, ge=0, le=1)
    epochs: Epochs = 20
    batch_size: BatchSize = 64
    learning_rate: float = Field(1e-3, gt=0)


def _softened(p: Any, temperature: float) -> Any:
    tf = import_tf()
    return tf.nn.softmax(tf.math.log(p + EPS) / temperature, axis=-1)


def _distill_classifier(student: Any, x: np.ndarray, y: np.ndarray, teacher_p: np.ndarray,
                        params: DistillParams, seed: int) -> None:
    tf, keras = import_tf(), import_keras()
    optimizer = keras.optimizers.Adam(learning_rate=params.learning_rate)
    ce = keras.losses.SparseCategoricalCrossentropy()
    t, a = params.temperature, params.alpha
    data = (tf.data.Dataset.from_tensor_slices((x, y, teacher_p))
            .shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(params.batch_size))

    @tf.function
    def step(xb: Any, yb: Any, tb: Any) -> Any:
        with tf.GradientTape() as tape:
            p = student(xb, training=True)
            pt, ps = _softened(tb, t), _softened(p, t)
            kl = tf.reduce_sum(pt * (tf.math.log(pt + EPS) - tf.math.log(ps + EPS)), axis=-1)
            loss = a * ce(yb, p) + (1 - a) * t * t * tf.reduce_mean(kl)
        grads = tape.gradient(loss, student.trainable_variables)
        optimizer.apply_gradients(zip(grads, student.trainable_variables, strict=True))
        return loss

    for epoch in range(params.epochs):
        losses = [float(step(xb, yb, tb)) for xb, yb, tb in data]
        log.info("distill epoch %d/%d: loss %.4g", epoch + 1, params.epochs, np.mean(losses))


def apply(state: BuildState, params: DistillParams) -> None:
    """Retrain the state's model architecture from fresh weights against the teacher."""
    if state.keras_model is None or state.dataset is None:
        raise StepError("distill needs a Keras model trained on a data set (the student)")
    if state.other_model is None:
        raise StepError("distill needs the suite's other models; none were provided")
    keras = import_keras()
    teacher = state.other_model(params.teacher)
    data = state.dataset
    outputs = outputs_for(data)
    keras.utils.set_random_seed(state.seed)
    student = keras.models.clone_model(state.keras_model)  # same architecture, fresh weights
    teacher_out = np.asarray(teacher.predict(data.x_train, verbose=0, batch_size=256))
    if teacher_out.shape[1:] != tuple(student.outputs[0].shape[1:]):
        raise StepError(f"teacher {params.teacher!r} outputs {teacher_out.shape[1:]}, the "
                        f"student {tuple(student.outputs[0].shape[1:])}")
    if data.task == "classification":
        _distill_classifier(student, data.x_train, data.y_train.astype(np.int32),
                            teacher_out.astype(np.float32), params, state.seed)
    else:
        target = params.alpha * targets(data, "train", outputs) + (1 - params.alpha) * \
            teacher_out.reshape(len(teacher_out), outputs)
        student.compile(optimizer=keras.optimizers.Adam(learning_rate=params.learning_rate),
                        loss="mse")
        student.fit(data.x_train, target.astype(np.float32), epochs=params.epochs,
                    batch_size=params.batch_size, shuffle=True, verbose=0)
    state.keras_model = student
    state.info["distill"] = {"teacher": params.teacher, "teacher_params":
                             int(teacher.count_params()), "student_params":
                             int(student.count_params()), "temperature": params.temperature,
                             "alpha": params.alpha, "epochs": params.epochs}


DISTILL = VariantStep(
    name="distill", apply=apply, params=DistillParams, phase="train",
    description="Knowledge distillation from another model of the suite (the teacher).",
)
