"""``cluster``: weight clustering (TensorFlow Model Optimization), for comparison with int4.

Each prunable layer's weights are shared among ``clusters`` centroids, fine-tuned, and the
wrappers stripped. The converter stores the weights dense (float32, or int8 after a quantize
step), so like pruning, clustering pays off in compressed size (``model_size_gzip``): 16
clusters carry 4 bits of information per weight, as int4 does.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
from pydantic import Field

from bench.variants.base import BuildState, StepError, VariantStep
from bench.variants.finetune import FineTune, clone, fit, import_tfmot, reason, require

log = logging.getLogger(__name__)

Init = Literal["kmeans++", "linear", "density", "random"]
INIT_NAMES = {"kmeans++": "KMEANS_PLUS_PLUS", "linear": "LINEAR", "density": "DENSITY_BASED",
              "random": "RANDOM"}


class ClusterParams(FineTune):
    """Parameters of the ``cluster`` step (plus the fine-tuning settings)."""

    clusters: int = Field(16, ge=2, le=256)
    init: Init = "kmeans++"
    learning_rate: float = Field(1e-4, gt=0.0)  # centroids drift at the training rate


def distinct_values(model: Any) -> dict[str, int]:
    """Distinct values of each layer's main weight (kernel) after clustering."""
    out: dict[str, int] = {}
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            out[layer.name] = int(np.unique(weights[0]).size)
    return out


def apply(state: BuildState, params: ClusterParams) -> None:
    """Cluster the weights of ``state.keras_model``, fine-tune, strip the wrappers."""
    model, dataset = require(state, "cluster")
    tfmot = import_tfmot()
    clustering = tfmot.clustering.keras
    init = getattr(clustering.CentroidInitialization, INIT_NAMES[params.init])
    try:
        wrapped = clustering.cluster_weights(clone(model), number_of_clusters=params.clusters,
                                             cluster_centroids_init=init)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise StepError(f"cluster: tfmot cannot cluster this model: {reason(exc)}") from exc
    facts = fit(wrapped, dataset, params, state.seed, "cluster")
    state.keras_model = clustering.strip_clustering(wrapped)
    state.info["cluster"] = {"clusters": params.clusters, "init": params.init,
                             "fine_tune": facts,
                             "distinct_weights": distinct_values(state.keras_model)}


CLUSTER = VariantStep(
    name="cluster",
    apply=apply,
    phase="train",
    params=ClusterParams,
    description="Weight clustering (tfmot, n centroids per layer) with fine-tuning; stripped.",
)
