"""Helpers shared by the interpreter runners: artifacts, (de)quantization, inputs, latency."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.artifacts.tflite_info import check_identifier
from bench.results.metrics import Method, Metric, metric

#: How many samples ``output_max_diff`` and generated evaluations use.
AGREEMENT_SAMPLES = 100


def load_artifact(path: Path) -> bytes:
    """The bytes of a .tflite artifact; :class:`ValueError` when it is not a .tflite file."""
    data = Path(path).read_bytes()
    check_identifier(data, str(path))
    return data


@dataclass(frozen=True)
class IOSpec:
    """An interpreter input or output: shape (batch first), dtype, per-tensor quantization."""

    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float = 0.0
    zero_point: int = 0

    @classmethod
    def from_details(cls, details: dict[str, Any]) -> IOSpec:
        """From a LiteRT or TFLite Micro ``get_input_details``/``get_output_details`` entry."""
        qp = details.get("quantization_parameters") or {}
        scales = np.asarray(qp.get("scales", []), dtype=np.float64).reshape(-1)
        zps = np.asarray(qp.get("zero_points", []), dtype=np.int64).reshape(-1)
        if scales.size == 0 and "quantization" in details:
            scale, zp = details["quantization"]
            scales, zps = np.array([scale]), np.array([zp])
        if scales.size > 1:
            raise ValueError(f"per-axis quantized model input/output ({scales.size} scales) is "
                             "not supported")
        return cls(shape=tuple(int(d) for d in details["shape"]),
                   dtype=np.dtype(details["dtype"]),
                   scale=float(scales[0]) if scales.size else 0.0,
                   zero_point=int(zps[0]) if zps.size else 0)

    @property
    def is_integer(self) -> bool:
        return np.issubdtype(self.dtype, np.integer)


class OpenedModel(ABC):
    """An interpreter opened on one model, batch 1 per invoke: the runners' shared base (LiteRT,
    TFLite Micro) and what a streaming replay needs (:mod:`bench.runners.replay`)."""

    in_specs: list[IOSpec]
    out_specs: list[IOSpec]

    @abstractmethod
    def set_inputs(self, raw: list[np.ndarray]) -> None: ...

    @abstractmethod
    def invoke(self) -> None: ...

    @abstractmethod
    def get_outputs(self) -> list[np.ndarray]: ...

    @abstractmethod
    def reset(self) -> None:
        """Clear state carried between invokes (LSTM variables)."""

    def run(self, raw: list[np.ndarray], reset: bool = False) -> list[np.ndarray]:
        """Raw outputs for one set of raw inputs (state reset first when ``reset``)."""
        if reset:
            self.reset()
        self.set_inputs(raw)
        self.invoke()
        return self.get_outputs()


def quantize(x: np.ndarray, spec: IOSpec) -> np.ndarray:
    """Float values → the tensor's dtype: ``round(x / scale) + zero_point``, clipped to range.

    Float tensors are cast; integer tensors without a scale are rounded and clipped.
    """
    x = np.asarray(x)
    if not spec.is_integer:
        return x.astype(spec.dtype, copy=False)
    info = np.iinfo(spec.dtype)
    q = np.round(x / spec.scale) + spec.zero_point if spec.scale else np.round(x)
    return np.clip(q, info.min, info.max).astype(spec.dtype)


def dequantize(q: np.ndarray, spec: IOSpec) -> np.ndarray:
    """Tensor values → float32: ``(q - zero_point) * scale`` for quantized tensors."""
    q = np.asarray(q)
    if spec.is_integer and spec.scale:
        return ((q.astype(np.float32) - np.float32(spec.zero_point))
                * np.float32(spec.scale)).astype(np.float32)
    return q.astype(np.float32, copy=False)


def as_batch1(x: np.ndarray, spec: IOSpec) -> np.ndarray:
    """One sample (with or without its batch axis) reshaped to the tensor's batch-1 shape."""
    x = np.asarray(x)
    if x.size != int(np.prod(spec.shape)):
        raise ValueError(f"a sample of shape {x.shape} does not fit the model input of shape "
                         f"{spec.shape}")
    return np.ascontiguousarray(x.reshape(spec.shape))


def generated_inputs(spec: IOSpec, n: int, seed: int) -> np.ndarray:
    """``n`` seeded batch-1 inputs ``(n, *spec.shape)`` in the tensor's dtype (raw domain).

    Integer tensors draw uniformly over their dtype's range, float tensors from N(0, 1).
    """
    rng = np.random.default_rng(seed)
    shape = (n, *spec.shape)
    if spec.is_integer:
        info = np.iinfo(spec.dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=spec.dtype)
    if spec.dtype == np.bool_:
        return rng.integers(0, 1, size=shape, endpoint=True).astype(np.bool_)
    return rng.standard_normal(shape).astype(spec.dtype)


class Detailed(dict):
    """Metrics (name → :class:`Metric`) with what the record's ``details`` gain
    (:func:`bench.runners.phase.run_phase` passes ``details`` on)."""

    details: dict[str, Any]


class Timed(dict):
    """Latency metrics (name → :class:`Metric`) that keep the raw durations they summarise, so
    the run can store them (``samples_ns``)."""

    samples_ns: list[float]


def latency_stats(durations_ns: Sequence[float], method: Method) -> Timed:
    """``latency_p50/p90/p99/mean/std`` in ms (std over the population) and ``latency_n``,
    keeping the durations."""
    if len(durations_ns) == 0:
        raise ValueError("no timed invokes: repeats must be at least 1")
    ms = np.asarray(durations_ns, dtype=np.float64) / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    out = Timed({"latency_p50": metric("latency_p50", p50, method),
            "latency_p90": metric("latency_p90", p90, method),
            "latency_p99": metric("latency_p99", p99, method),
            "latency_mean": metric("latency_mean", ms.mean(), method),
            "latency_std": metric("latency_std", ms.std(), method),
            "latency_n": metric("latency_n", len(ms), method)})
    out.samples_ns = [float(d) for d in durations_ns]
    return out


def output_max_diff(a: Sequence[np.ndarray], b: Sequence[np.ndarray], spec: IOSpec,
                    method: Method) -> Metric:
    """Max absolute difference of raw outputs: quantized steps (integer) or float units."""
    diff = max((float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
                for x, y in zip(a, b, strict=True)), default=0.0)
    return metric("output_max_diff", diff, method, unit="steps" if spec.is_integer else "")


@contextlib.contextmanager
def captured_fds() -> Iterator[list[str]]:
    """Capture what native code writes to file descriptors 1 and 2 (yields ``[text]`` on exit).

    C++ libraries write straight to the descriptors, around ``sys.stdout``; both C stdio and
    Python buffers are flushed before the descriptors are swapped back.
    """
    libc = ctypes.CDLL(None)
    out: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    libc.fflush(None)
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            yield out
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            libc.fflush(None)
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            tmp.seek(0)
            out.append(tmp.read().decode(errors="replace"))


def batch_predict(run_one: Callable[[np.ndarray], np.ndarray], in_spec: IOSpec,
                  out_spec: IOSpec) -> Callable[[np.ndarray], np.ndarray]:
    """A ``predict(x_float) -> y_float`` over a batch from ``run_one(raw batch-1 input)``.

    Inputs are quantized to the model's input dtype, one sample per invoke; each raw output is
    dequantized and flattened, so the result is ``(n, outputs)`` float32.
    """
    def predict(x: np.ndarray) -> np.ndarray:
        q = quantize(x, in_spec)
        rows = [dequantize(run_one(as_batch1(sample, in_spec)), out_spec).reshape(-1)
                for sample in q]
        return np.stack(rows) if rows else np.zeros((0, 0), np.float32)

    return predict


def timed_invokes(invoke: Callable[[], Any], warmup: int, repeats: int) -> list[int]:
    """``warmup`` untimed calls, then ``repeats`` calls each timed alone (ns, perf_counter_ns).

    The loop is kept bare (local names, preallocated list, garbage collection paused) so that its
    median tracks a plain ``for _ in range(n): invoke()`` loop.
    """
    clock = time.perf_counter_ns
    for _ in range(warmup):
        invoke()
    durations = [0] * repeats
    gc_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(repeats):
            t0 = clock()
            invoke()
            durations[i] = clock() - t0
    finally:
        if gc_enabled:
            gc.enable()
    return durations


def sample_inputs(request_dataset: Path | None, specs: Sequence[IOSpec], n: int,
                  seed: int) -> list[list[np.ndarray]]:
    """Up to ``n`` raw batch-1 input sets: the first test samples, else seeded generated ones."""
    if request_dataset is not None:
        from bench.datasets.base import Dataset

        if len(specs) != 1:
            raise ValueError(f"a data set feeds one model input; this model has {len(specs)}")
        x, _ = Dataset.load(request_dataset).split("test")
        if len(x) == 0:
            raise ValueError(f"the test split of {request_dataset} is empty")
        q = quantize(x[:n], specs[0])
        return [[as_batch1(sample, specs[0])] for sample in q]
    per_input = [generated_inputs(spec, n, seed + k) for k, spec in enumerate(specs)]
    return [[arr[i] for arr in per_input] for i in range(n)]
