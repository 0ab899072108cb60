"""Host runner: the LiteRT interpreter (``ai-edge-litert``), single-threaded.

Device option ``runtime: tflite-runtime`` selects the legacy ``tflite_runtime`` package instead;
when it cannot be imported (its last release predates numpy 2) the cell is skipped. Device option
``stream_period_s: S`` adds a streaming replay to the measure phase (:mod:`bench.runners.replay`):
the test split window by window at one reading every S seconds, as ``stream_*`` metrics.
Interpreters are imported inside functions so that importing this module stays light.
"""

from __future__ import annotations

import contextlib
import logging
import math
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from bench.artifacts.tflite_info import inspect
from bench.datasets.base import Dataset
from bench.errors import PositiveInt, Strict, positive
from bench.results.metrics import metric, task_metrics
from bench.runners.base import (
    MetricMap,
    Runner,
    RunnerSkip,
    RunRequest,
)
from bench.runners.io import (
    IOSpec,
    OpenedModel,
    batch_predict,
    latency_stats,
    load_artifact,
    sample_inputs,
    timed_invokes,
)
from bench.runners.layers import NO_PROFILER
from bench.runners.replay import replay

log = logging.getLogger(__name__)

RUNTIMES = ("litert", "tflite-runtime")


class HostOptions(Strict):
    """A ``host`` connection's options (device file ``connection:``)."""

    runtime: Literal["litert", "ai-edge-litert", "tflite-runtime"] = "litert"
    num_threads: PositiveInt = 1
    stream_period_s: Annotated[float, positive(what="the seconds between readings, ")] | None = (
        Field(None, description="streaming replay: seconds between readings"))


def versions() -> dict[str, str]:
    """Installed interpreter packages (part of the evaluate cache key)."""
    out: dict[str, str] = {}
    for dist in ("ai-edge-litert", "tflite-runtime"):
        with contextlib.suppress(PackageNotFoundError):
            out[dist] = version(dist)
    return out


def unsupported(tflite: bytes, options: dict[str, Any]) -> str | None:
    """Skip reason when ``runtime: tflite-runtime`` is asked for and not installed."""
    import importlib.util

    if options.get("runtime") == "tflite-runtime" and importlib.util.find_spec(
            "tflite_runtime") is None:
        return "tflite-runtime is not installed (its last release, 2.14, predates numpy 2)"
    return None


def _interpreter_class(options: dict[str, Any]) -> Any:
    runtime = options.get("runtime", "litert")
    if runtime in ("litert", "ai-edge-litert"):
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    if runtime == "tflite-runtime":
        try:
            from tflite_runtime.interpreter import Interpreter
        except (ImportError, AttributeError) as exc:
            raise RunnerSkip(f"tflite-runtime cannot be imported: {exc}") from exc
        return Interpreter
    raise ValueError(f"unknown host runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")


class LiteRTModel(OpenedModel):
    """An allocated interpreter with its first input/output specs; batch 1 per invoke."""

    def __init__(self, model: bytes, options: dict[str, Any] | None = None,
                 source: str = "model") -> None:
        options = options or {}
        cls = _interpreter_class(options)
        try:
            self.interpreter = cls(model_content=model,
                                   num_threads=int(options.get("num_threads", 1)))
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise RuntimeError(f"LiteRT cannot load {source}: {exc}") from exc
        self.inputs = self.interpreter.get_input_details()
        self.outputs = self.interpreter.get_output_details()
        self.in_specs = [IOSpec.from_details(d) for d in self.inputs]
        self.out_specs = [IOSpec.from_details(d) for d in self.outputs]

    def set_inputs(self, raw: list[np.ndarray]) -> None:
        for detail, x in zip(self.inputs, raw, strict=True):
            self.interpreter.set_tensor(detail["index"], x)

    def invoke(self) -> None:
        self.interpreter.invoke()

    def get_outputs(self) -> list[np.ndarray]:
        return [self.interpreter.get_tensor(d["index"]) for d in self.outputs]

    def reset(self) -> None:
        self.interpreter.reset_all_variables()


def open_model(data: bytes, options: dict[str, Any], source: str = "model") -> LiteRTModel:
    """An allocated interpreter for ``data`` (the runner's ``open_model``: streaming replay)."""
    return LiteRTModel(data, options, source)


def _open(request: RunRequest) -> tuple[LiteRTModel, bytes]:
    data = load_artifact(request.artifact)
    return LiteRTModel(data, request.options, str(request.artifact)), data


def evaluate(request: RunRequest) -> MetricMap:
    """Task metrics on the test split through LiteRT (method ``measured``); none without data."""
    if request.dataset is None:
        return {}

    model, data = _open(request)
    if len(model.in_specs) != 1:
        raise ValueError(f"a data set feeds one model input; this model has "
                         f"{len(model.in_specs)}")
    reset = inspect(data, str(request.artifact)).has_variables
    predict = batch_predict(lambda x: model.run([x], reset)[0], model.in_specs[0],
                            model.out_specs[0])
    return task_metrics(Dataset.load(request.dataset), predict, "measured")


def measure(request: RunRequest) -> MetricMap:
    """Latency of ``invoke()`` on this host: the input is set once (first test sample or a
    seeded generated input), ``warmup`` untimed invokes, then ``repeats`` timed ones. No
    per-layer profile: the Python interpreter has no profiler (``details["layers_reason"]``)."""
    model, data = _open(request)
    model.set_inputs(sample_inputs(request.dataset, model.in_specs, 1, request.seed)[0])
    durations = timed_invokes(model.interpreter.invoke, request.warmup, request.repeats)
    metrics = latency_stats(durations, "measured")
    metrics.details = {"layers_reason": NO_PROFILER["litert"]}
    period = request.options.get("stream_period_s")
    if period is not None and request.dataset is not None:
        metrics.update(stream_metrics(data, request, float(period)))
    return metrics


#: The replay's verdicts a record lacks (its precision, recall, MAE and accuracy are the
#: evaluate phase's: same artifact, test split and threshold rule, hence the same figures).
STREAM_TASK_METRICS = ("alerts", "events", "events_detected")


def stream_metrics(tflite: bytes, request: RunRequest, period_s: float) -> MetricMap:
    """The streaming replay's figures: per-window latency against the sample period, and for
    anomaly models the alerts raised and the injected events caught."""

    source = str(request.artifact)
    summary = replay(LiteRTModel(tflite, request.options, source), Dataset.load(request.dataset),
                     period_s, reset=inspect(tflite, source).has_variables,
                     warmup=request.warmup).summary()
    out = {"stream_latency_p99": metric("stream_latency_p99", summary["latency_ms"]["p99"],
                                        "measured"),
           "stream_rtf": metric("stream_rtf", summary["real_time_factor"], "measured"),
           "stream_deadline_misses": metric("stream_deadline_misses",
                                            summary["deadline_misses"], "measured")}
    if math.isfinite(summary["max_rate_hz"]):
        out["stream_max_rate_hz"] = metric("stream_max_rate_hz", summary["max_rate_hz"],
                                           "measured")
    for key in STREAM_TASK_METRICS:
        if key in summary["metrics"]:
            out[f"stream_{key}"] = metric(f"stream_{key}", summary["metrics"][key], "measured")
    return out


LITERT = Runner(
    name="litert",
    evaluate="bench.runners.litert:evaluate",
    measure="bench.runners.litert:measure",
    host_timing=True,
    kind="host",
    options=HostOptions,
    open_model="bench.runners.litert:open_model",
    unsupported=unsupported,
    versions=versions,
    description="LiteRT interpreter on the host, one thread (tflite-runtime on request)",
)
