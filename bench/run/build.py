"""Build a (model, variant) artifact: data set → trained or loaded model → steps → .tflite.

:func:`plan_build` runs in the parent and only computes cache keys (cheap, no TensorFlow).
:func:`build_artifact` runs in a worker subprocess (the converter can segfault) and fills the
cache: data set ``.npz``, trained model, artifact ``.tflite`` with its build facts.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import files, registry
from bench.artifacts import tflite_info
from bench.artifacts.cache import Cache, key, sha256_file, versions
from bench.datasets.base import Dataset
from bench.models import classical, imported
from bench.models import train as training
from bench.models.archive import check_archive
from bench.suite.spec import ModelEntry, VariantEntry
from bench.variants.base import BuildState, StepError
from bench.variants.quantize import convert_fp32

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildPlan:
    """Cache keys of one (model, variant) build; plain data for the worker."""

    model: ModelEntry
    variant: VariantEntry
    dataset_key: str | None
    model_key: str
    artifact_key: str
    refs: dict[str, Any] = field(default_factory=dict)  # other models the steps use

    @property
    def suffix(self) -> str:
        """``.c`` for classical (scikit-learn) baselines, else ``.tflite``."""
        return ".c" if is_classical(self.model) else ".tflite"

    def payload(self, cache: Cache) -> dict[str, Any]:
        return {"model": self.model.model_dump(mode="json"),
                "variant": self.variant.model_dump(mode="json"),
                "keys": {"dataset": self.dataset_key, "model": self.model_key,
                         "artifact": self.artifact_key},
                "refs": self.refs, "cache_root": str(cache.root)}


def dataset_key(model: ModelEntry) -> str | None:
    if model.dataset is None:
        return None
    plugin = registry.datasets.get(model.dataset.name)
    params = plugin.params.model_validate(model.dataset.params).model_dump(mode="json")
    return key({"dataset": plugin.name, "version": plugin.version, "params": params,
                "seed": model.dataset.seed,
                "versions": versions(("edgebench", "numpy", "aeon", "scikit-learn"))})


def is_classical(model: ModelEntry) -> bool:
    return model.builder is not None and registry.models.get(model.builder).framework == "sklearn"


#: The framework a model file comes from, by suffix.
FILE_FRAMEWORKS = {".keras": "keras", ".h5": "keras", ".tflite": "litert", ".onnx": "onnx",
                   ".pt": "pytorch", ".pth": "pytorch", ".pt2": "pytorch"}


def framework_of(model: ModelEntry) -> str:
    """Where a model entry comes from: its builder's framework, or its file's."""
    if model.builder is not None:
        return registry.models.get(model.builder).framework
    return FILE_FRAMEWORKS.get(model.path.suffix.lower(), "unknown")


def model_refs(variant: VariantEntry) -> list[str]:
    """Ids of other model entries the variant's steps use (e.g. a distillation teacher)."""
    refs = []
    for name, params in variant.step_list():
        fields = getattr(registry.variant_steps.get(name).params, "model_refs", ())
        refs += [params[f] for f in fields if f in params]
    return refs


#: Libraries whose version changes what a PyTorch or ONNX model converts to.
CONVERTER_LIBRARIES = ("torch", "onnx", "onnx2tf", "onnx-graphsurgeon", "onnxruntime")
#: Largest model file accepted (TinyML models are KiB to a few MiB).
MAX_MODEL_BYTES = 256 << 20
#: Where each kind of model file carries its signature: (offsets tried, bytes).
SIGNATURES = {".h5": ((0, 512, 1024, 2048), b"\x89HDF\r\n\x1a\n"),  # HDF5 superblock
              ".keras": ((0,), b"PK\x03\x04"),  # a zip archive
              ".onnx": ((0,), b"\x08"),  # protobuf field 1 (ir_version), a varint
              ".pt2": ((0,), b"PK\x03\x04")}
#: What each suffix's signature says the file is, for the error.
KINDS = {".h5": "an HDF5", ".keras": "a zip (.keras)", ".onnx": "an ONNX (protobuf)",
         ".pt2": "a zip (.pt2)"}


def judge_model_file(path: Path) -> str:
    """The SHA-256 of a user's model file, once its size and kind are judged: ValueError naming
    ``path`` when it is over :data:`MAX_MODEL_BYTES`, lacks its format's signature, or (a
    ``.tflite``) does not parse. Nothing is hashed whole, read or copied before that."""
    if problem := files.not_a_file(path, "model file"):
        raise (FileNotFoundError if "does not exist" in problem else ValueError)(problem)
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise ValueError(f"model file {path} is {size / 2**20:.0f} MiB; model files up to "
                         f"{MAX_MODEL_BYTES >> 20} MiB are accepted")
    suffix = path.suffix.lower()
    if suffix == ".tflite":

        with path.open("rb") as f:
            tflite_info.check_identifier(f.read(8), str(path))
        data = path.read_bytes()
        tflite_info.inspect(data, str(path))  # ValueError naming the user's file
        return hashlib.sha256(data).hexdigest()
    if suffix in SIGNATURES:
        offsets, signature = SIGNATURES[suffix]
        with path.open("rb") as f:
            head = f.read(max(offsets) + len(signature))
        if not any(head[o:o + len(signature)] == signature for o in offsets):
            raise ValueError(f"model file {path} is not {KINDS[suffix]} file: it starts with "
                             f"{head[:8]!r}")
        if suffix == ".keras":
            check_archive(path)  # ArchiveError (a ValueError) naming the file
    return sha256_file(path)


def _model_key(model: ModelEntry) -> str:
    dkey = dataset_key(model)
    if model.path is not None:
        model_recipe: dict[str, Any] = {"file_sha256": judge_model_file(model.path),
                                        "suffix": model.path.suffix}
        if model.trust_code:  # a trusted load is another build: an untrusted one is refused
            model_recipe["trust_code"] = True
        if model.path.suffix.lower() in imported.ONNX_SUFFIXES + imported.TORCH_SUFFIXES:
            model_recipe["converters"] = versions(CONVERTER_LIBRARIES)
    else:
        builder = registry.models.get(model.builder)
        model_recipe = {"builder": builder.name, "version": builder.version,
                        "params": builder.params.model_validate(model.params).model_dump(
                            mode="json"),
                        "dataset": dkey, "train": model.train.model_dump(mode="json"),
                        "versions": versions()}
        if builder.framework == "pytorch":
            model_recipe["converters"] = versions(CONVERTER_LIBRARIES)
    return key(model_recipe)


def plan_build(model: ModelEntry, variant: VariantEntry,
               others: dict[str, ModelEntry] | None = None) -> BuildPlan:
    """Cache keys of one build; ``others`` are the suite's model entries (for steps that use
    another model, whose key then becomes part of this artifact's key)."""
    dkey, mkey = dataset_key(model), _model_key(model)
    refs = {}
    for ref in model_refs(variant):
        if others is None or ref not in others:
            raise ValueError(f"variant {variant.id!r} uses model {ref!r}, not in this suite")
        refs[ref] = {"model": others[ref].model_dump(mode="json"),
                     "keys": {"dataset": dataset_key(others[ref]),
                              "model": _model_key(others[ref])}}
    steps = []
    for name, params in variant.step_list():
        step = registry.variant_steps.get(name)
        steps.append([name, step.version,
                      step.params.model_validate(params).model_dump(mode="json")])
    akey = key({"model": mkey, "steps": steps, "versions": versions(),
                "uses": {r: v["keys"]["model"] for r, v in refs.items()}})
    return BuildPlan(model, variant, dkey, mkey, akey, refs)


# --- worker side -----------------------------------------------------------------------------

def ensure_dataset(model: ModelEntry, dkey: str, cache: Cache) -> Path:
    """The data set's cached ``.npz``, generated on first use."""

    path = cache.dataset(dkey)
    if not path.exists():
        plugin = registry.datasets.get(model.dataset.name)
        params = plugin.params.model_validate(model.dataset.params)
        data: Dataset = plugin.load(params, model.dataset.seed)
        buf = io.BytesIO()
        data.save(buf)
        cache.write(path, buf.getvalue())
    return path


def _trained_model(model: ModelEntry, mkey: str, data: Any, cache: Cache) -> tuple[Any, dict]:
    """Load the cached trained model, or train and cache it."""

    saved = cache.model_dir(mkey) / "model.keras"
    if model.path is not None:
        facts = {"source": str(model.path)}
        if model.trust_code:
            facts["trust_code"] = True  # the suite let this file's code run
        if model.path.suffix.lower() in imported.ONNX_SUFFIXES + imported.TORCH_SUFFIXES:
            keras_model, origin = imported.load_model_file(model.path, model.trust_code, data)
            return keras_model, {**facts, **origin}
        return training.load_keras_file(model.path, trust_code=model.trust_code), facts
    builder = registry.models.get(model.builder)
    if builder.framework == "pytorch":
        return _trained_torch_model(model, builder, mkey, data, cache)
    if saved.exists():
        return training.load_keras_file(saved), {"cached": True, "untrained": data is None}
    params = builder.params.model_validate(model.params)
    started = time.monotonic()
    if data is None:
        keras_model = training.build_untrained(builder, params, model.train.seed)
        facts = {"cached": False, "untrained": True,
                 "note": "no data set: seeded random weights, so size, arena and latency are "
                         "meaningful and there are no task metrics"}
    else:
        keras_model = training.train(builder, params, data, model.train)
        facts = {"cached": False, "train_seconds": round(time.monotonic() - started, 2)}
    files.make_folder(saved.parent, cache.root)  # refuses a link on the way
    tmp = saved.with_name(f".model.{os.getpid()}.tmp.keras")  # concurrent builders
    if os.path.lexists(tmp):  # Keras would write through a link planted there
        os.unlink(tmp)
    try:
        keras_model.save(tmp)
    except OSError as e:
        if e.errno in files.NO_ROOM:
            raise files.DiskFull(saved.parent, 0, e.errno) from None
        raise
    tmp.replace(saved)
    return keras_model, facts


def _trained_torch_model(model: ModelEntry, builder: Any, mkey: str, data: Any,
                         cache: Cache) -> tuple[Any, dict]:
    """A PyTorch builder's model: trained with torch and exported to ONNX (cached as
    ``model.onnx``), then converted to tf-keras by onnx2tf."""

    saved = cache.model_dir(mkey) / "model.onnx"
    facts: dict[str, Any] = {"cached": saved.exists(), "untrained": data is None}
    if not saved.exists():
        started = time.monotonic()
        module = imported.train_torch(builder, model.params, data, model.train)
        facts["train_seconds"] = round(time.monotonic() - started, 2)
        facts["params"] = imported.parameter_count(module)
        shape = data.input_shape if data is not None else builder.default_io(
            builder.params.model_validate(model.params))[0]
        files.make_folder(saved.parent, cache.root)
        tmp = saved.with_name(f".model.{os.getpid()}.tmp.onnx")
        if os.path.lexists(tmp):
            os.unlink(tmp)
        imported.export_onnx(module, tuple(shape), tmp)
        tmp.replace(saved)
    return imported.onnx_to_keras(saved, f"{model.id} (exported from PyTorch)"), {
        **facts, **imported.framework_facts("pytorch")}


def _loaded_model(entry: ModelEntry, keys: dict[str, Any], cache: Cache) -> Any:
    """The trained Keras model of an entry (trained and cached on a miss)."""

    data = None
    if entry.dataset is not None:
        data = Dataset.load(ensure_dataset(entry, keys["dataset"], cache))
    return _trained_model(entry, keys["model"], data, cache)[0]


def check_step_order(variant: VariantEntry) -> None:
    """:class:`StepError` unless training steps come before the one conversion step (the
    suite check, repeated for builds that did not come through
    :func:`bench.suite.spec.load_suite`)."""

    if problems := variant.order_problems():
        j, message = problems[0]
        raise StepError(f"variant {variant.id!r}: steps[{j}]: {message}")


def build_artifact(model: dict[str, Any], variant: dict[str, Any], keys: dict[str, str | None],
                   cache_root: str, refs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Worker entry: build one artifact into the cache and return its build facts."""

    cache = Cache(Path(cache_root))
    entry, var = ModelEntry.model_validate(model), VariantEntry.model_validate(variant)
    check_step_order(var)
    data = None
    if entry.dataset is not None:
        data = Dataset.load(ensure_dataset(entry, keys["dataset"], cache))
    if is_classical(entry):
        return _build_c(entry, var, data, keys["artifact"], cache)
    facts: dict[str, Any] = {}
    if entry.path is not None and entry.path.suffix == ".tflite":
        state = BuildState(keras_model=None, tflite=entry.path.read_bytes(), dataset=data)
    else:
        keras_model, facts["model"] = _trained_model(entry, keys["model"], data, cache)
        state = BuildState(keras_model=keras_model, tflite=None, dataset=data,
                           seed=entry.train.seed)
    refs = refs or {}

    def other_model(ref: str) -> Any:
        if ref not in refs:
            raise ValueError(f"model {ref!r} was not planned for this build")
        return _loaded_model(ModelEntry.model_validate(refs[ref]["model"]), refs[ref]["keys"],
                             cache)

    state.other_model = other_model
    for name, params in var.step_list():
        step = registry.variant_steps.get(name)
        step.apply(state, step.params.model_validate(params))
    if state.tflite is None:
        state.tflite = convert_fp32(state.keras_model,
                                    tuple(state.keras_model.input_shape[1:]))
    cache.write(cache.artifact(keys["artifact"]), state.tflite)
    facts["steps"] = state.info
    cache.write_json(cache.artifact_info(keys["artifact"]), facts)
    return facts


def _build_c(entry: ModelEntry, var: VariantEntry, data: Any, akey: str,
             cache: Cache) -> dict[str, Any]:
    """A classical baseline: fit with scikit-learn, emit C, measure its compiled size."""

    if var.steps:
        raise StepError(f"{entry.builder} is a scikit-learn model deployed as C; variant "
                        f"{var.id!r} has compression steps, which apply to Keras models only")
    builder = registry.models.get(entry.builder)
    started = time.monotonic()
    fitted = classical.fit(builder, builder.params.model_validate(entry.params), data,
                           entry.train.seed)
    source, params = classical.to_c(fitted, int(np.prod(data.input_shape)))
    facts = {"model": {"cached": False, "train_seconds": round(time.monotonic() - started, 2)},
             "artifact": "C source (predict(const float *x, float *out))",
             "params": params, "compiled_size": classical.compiled_size(source),
             "size_note": "model_size = .text + .rodata + .data of the C compiled with gcc -Os "
                          "for this host", "steps": {}}
    cache.write(cache.artifact(akey, ".c"), source.encode())
    cache.write_json(cache.artifact_info(akey), facts)
    return facts
