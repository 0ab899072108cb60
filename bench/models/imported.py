"""Models from PyTorch and ONNX, brought to the tf-keras model every variant step starts from.

The route: a PyTorch module (trained by a registered builder, or loaded from a trusted file) is
exported to ONNX with ``torch.onnx.export`` (its TorchScript exporter, which PyTorch ships); an
ONNX model (exported so, or a user's ``.onnx`` file) is converted by ``onnx2tf`` into a tf-keras
model whose image inputs are channels last again. From there a variant's steps run as for a
Keras model (``quantize: {mode: int8}`` calibrates on the suite's data set).

Why not ``litert-torch`` (PyTorch → LiteRT directly): it requires ``ai-edge-litert[model-utils]``,
which pins ``xdsl==0.28.0``, which pins ``typing-extensions<4.13``, and the pydantic edgebench
uses needs ``typing-extensions>=4.14``: installing it downgrades pydantic.

Every failure names the file and keeps the converter's own words, shortened
(:func:`shorten`): it becomes the cell's reason.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.artifacts.cache import package_version
from bench.datasets.base import Dataset
from bench.models.base import ModelBuilder
from bench.models.extras import require
from bench.models.train import ModelFileError, TrainSpec, import_keras, outputs_for, targets

log = logging.getLogger(__name__)

ONNX_SUFFIXES = (".onnx",)
#: PyTorch files: each unpickles objects when loaded (``.pt2`` too, for its weights), so each is
#: code and is loaded only with ``trust_code: true``.
TORCH_SUFFIXES = (".pt", ".pth", ".pt2")
#: ONNX opset the exporter writes.
OPSET = 17
MAX_REASON_CHARS = 400
#: Keras's fuzz factor: its Adam ε and the clip of probabilities in cross-entropy.
KERAS_EPSILON = 1e-7
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ConversionError(ValueError):
    """A converter could not convert a model; the message names the file and the converter's
    reason."""


def shorten(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """A converter's output reduced to its error lines (colour codes, blank lines, tracebacks
    and repeats dropped), at most ``limit`` characters."""
    lines: list[str] = []
    for raw in _ANSI.sub("", text).splitlines():
        line = raw.strip()
        if (not line or line.startswith(("File ", "Traceback", "^")) or line in lines
                or set(line) <= set("-=*~ ")):
            continue
        lines.append(line)
    errors = [ln for ln in lines if "error" in ln.lower()] or lines[-3:]
    joined = " | ".join(errors)
    return joined if len(joined) <= limit else joined[: limit - 1] + "…"


def channels_first(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A data set's channels-last sample shape as PyTorch takes it (channels first)."""
    return (shape[-1], *shape[:-1]) if len(shape) >= 2 else tuple(shape)


def framework_facts(framework: str) -> dict[str, Any]:
    """What a record says of a model's origin: source framework, converter, versions."""
    names = (("torch",) if framework == "pytorch" else ()) + ("onnx", "onnx2tf")
    converter = ("torch.onnx.export (TorchScript) → onnx2tf" if framework == "pytorch"
                 else "onnx2tf")
    return {"framework": framework, "converter": converter,
            "converter_versions": {n: package_version(n) for n in names}}


# --- PyTorch --------------------------------------------------------------------------------

def train_torch(builder: ModelBuilder, params: Any, dataset: Dataset | None,
                spec: TrainSpec) -> Any:
    """Build ``builder``'s module and train it as :func:`bench.models.train.train` trains a
    Keras model: Adam at ``spec.learning_rate`` with Keras's ε (1e-7), cross-entropy computed as
    Keras computes it (:func:`cross_entropy`), batches of ``spec.batch_size`` reshuffled each
    epoch, ``spec.epochs``, seeded by ``spec.seed``. No data set: seeded random weights."""
    torch = require("torch", "PyTorch models")
    torch.manual_seed(spec.seed)
    torch.set_num_threads(1)  # tiny models: threads cost more than they give on shared cores
    resolved = builder.params.model_validate(params or {})
    if dataset is None:
        if builder.default_io is None:
            raise ValueError(f"model builder {builder.name!r} needs a data set")
        shape, outputs = builder.default_io(resolved)
        return builder.build(resolved, tuple(shape), outputs).eval()
    if dataset.task != "classification":
        raise ValueError(f"{builder.name}: PyTorch builders train classifiers, not the "
                         f"{dataset.task} data set")
    outputs = outputs_for(dataset)
    module = builder.build(resolved, dataset.input_shape, outputs)
    x = torch.from_numpy(_to_channels_first(dataset.x_train))
    y = torch.from_numpy(targets(dataset, "train", outputs).astype(np.int64))
    optimizer = torch.optim.Adam(module.parameters(), lr=spec.learning_rate,
                                 eps=KERAS_EPSILON)
    generator = torch.Generator().manual_seed(spec.seed)
    module.train()
    for epoch in range(spec.epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), spec.batch_size):
            batch = order[start:start + spec.batch_size]
            optimizer.zero_grad()
            loss = cross_entropy(module, x[batch], y[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        log.info("%s epoch %d/%d: loss=%.4g", builder.name, epoch + 1, spec.epochs,
                 total / len(x))
    return module.eval()


def cross_entropy(module: Any, x: Any, y: Any) -> Any:
    """Mean cross-entropy of ``module`` on ``(x, y)`` as Keras computes it for a softmax output:
    from the logits when the module is a ``Sequential`` ending in ``Softmax`` (exact, so a
    confidently wrong image still teaches), else from probabilities clipped to [ε, 1 − ε]."""
    torch = require("torch", "PyTorch models")
    functional = torch.nn.functional
    if isinstance(module, torch.nn.Sequential) and isinstance(module[-1], torch.nn.Softmax):
        return functional.cross_entropy(module[:-1](x), y)
    probabilities = module(x).clamp(KERAS_EPSILON, 1 - KERAS_EPSILON)
    return functional.nll_loss(torch.log(probabilities), y)


def _to_channels_first(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(x, -1, 1) if x.ndim >= 3 else x, dtype=np.float32)


def export_onnx(module: Any, input_shape: tuple[int, ...], path: Path) -> None:
    """Write ``module`` as ONNX to ``path``: input ``input`` of the data set's sample shape taken
    channels first, a free batch axis. :class:`ConversionError` with the exporter's reason."""
    torch = require("torch", "PyTorch models")
    example = torch.zeros((1, *channels_first(tuple(input_shape))), dtype=torch.float32)
    words = io.StringIO()
    try:
        with contextlib.redirect_stdout(words), contextlib.redirect_stderr(words):
            torch.onnx.export(module.eval(), (example,), str(path), dynamo=False,
                              opset_version=OPSET, input_names=["input"],
                              output_names=["output"],
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    except Exception as e:  # the exporter raises many kinds; keep its words
        raise ConversionError(f"torch.onnx.export could not export the PyTorch model: "
                              f"{shorten(f'{type(e).__name__}: {e}')}") from None


def load_torch_file(path: Path, trust_code: bool) -> Any:
    """A PyTorch module from a ``.pt``/``.pth`` (a pickled module) or ``.pt2`` (an
    ``ExportedProgram``) file, only when ``trust_code``: loading either unpickles objects,
    which can run any code."""
    if not trust_code:
        raise ModelFileError(
            f"model file {path} is a PyTorch file: loading it unpickles objects, which can run "
            "any code; edgebench does not load it unless the suite sets `trust_code: true` on "
            "this model (only for a file whose source you trust), or give the model as .onnx")
    torch = require("torch", "PyTorch models")
    try:
        if path.suffix.lower() == ".pt2":
            return torch.export.load(str(path)).module()
        module = torch.load(str(path), weights_only=False, map_location="cpu")
    except Exception as e:
        raise ModelFileError(f"cannot load PyTorch model {path}: "
                             f"{shorten(f'{type(e).__name__}: {e}')}") from None
    if not isinstance(module, torch.nn.Module):
        raise ModelFileError(f"model file {path} holds a {type(module).__name__}, not a "
                             "torch.nn.Module (a state dict needs its module's code: register "
                             "a builder instead)")
    return module.eval()


# --- ONNX -----------------------------------------------------------------------------------

def check_onnx(path: Path) -> None:
    """:class:`ModelFileError` naming ``path`` unless it parses and passes the ONNX checker."""
    onnx = require("onnx", "ONNX models")
    try:
        onnx.checker.check_model(onnx.load(str(path)))
    except Exception as e:
        raise ModelFileError(f"model file {path} is not a valid ONNX model: "
                             f"{shorten(f'{type(e).__name__}: {e}')}") from None


def onnx_to_keras(path: Path, source: str | None = None) -> Any:
    """The tf-keras model ``onnx2tf`` converts ``path`` into (4-D image inputs come back
    channels last). :class:`ConversionError` naming ``source`` (default ``path``) with
    onnx2tf's reason, whether it raised or exited."""
    check_onnx(path)
    onnx2tf = require("onnx2tf", "ONNX models")
    import_keras()  # selects tf-keras before onnx2tf imports TensorFlow
    words = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="edgebench-onnx2tf-") as out:
        copy = Path(out) / "input.onnx"  # onnx2tf rewrites its input file (op names, shapes)
        shutil.copyfile(path, copy)
        try:
            with contextlib.redirect_stdout(words), contextlib.redirect_stderr(words):
                model = onnx2tf.convert(input_onnx_file_path=str(copy), output_folder_path=out,
                                        non_verbose=True, verbosity="error")
        except (Exception, SystemExit) as e:  # onnx2tf exits on some errors
            said = words.getvalue() + f"\n{type(e).__name__}: {e}"
            raise ConversionError(f"onnx2tf could not convert {source or path}: "
                                  f"{shorten(said)}") from None
    if model is None:
        raise ConversionError(f"onnx2tf could not convert {source or path}: no model returned "
                              f"({shorten(words.getvalue())})")
    return model


def torch_to_keras(module: Any, input_shape: tuple[int, ...], source: str) -> Any:
    """A PyTorch module → ONNX (in a temporary file) → tf-keras model."""
    with tempfile.TemporaryDirectory(prefix="edgebench-torch-") as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        export_onnx(module, input_shape, onnx_path)
        return onnx_to_keras(onnx_path, source)


def load_model_file(path: Path, trust_code: bool, dataset: Dataset | None) -> tuple[Any, dict]:
    """A user's ``.onnx`` or PyTorch file as a tf-keras model, with its framework facts."""
    suffix = path.suffix.lower()
    if suffix in ONNX_SUFFIXES:
        return onnx_to_keras(path), framework_facts("onnx")
    module = load_torch_file(path, trust_code)
    if dataset is None:
        raise ModelFileError(f"model file {path}: a PyTorch model needs the suite's data set "
                             "to know its input shape (add `dataset:` to this model)")
    return torch_to_keras(module, dataset.input_shape, str(path)), framework_facts("pytorch")


def parameter_count(module: Any) -> int:
    return int(sum(math.prod(p.shape) for p in module.parameters()))
