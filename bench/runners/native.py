"""Host runner for C artifacts (classical baselines): compile with gcc, call through ctypes.

The C is compiled with ``gcc -O2 -shared`` for this host and ``predict(const float *x, float
*out)`` is timed per call like LiteRT's ``invoke()`` (method ``measured``); task metrics come
from the same compiled code on the test split.
"""

from __future__ import annotations

import ctypes
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from bench.datasets.base import Dataset
from bench.results.metrics import task_metrics
from bench.runners.base import MetricMap, Runner, RunRequest
from bench.runners.io import latency_stats, timed_invokes


class CompiledModel:
    """The artifact's ``predict`` compiled into a shared library."""

    def __init__(self, source: Path) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="edgebench-native-")
        lib = Path(self._tmp.name, "model.so")
        out = subprocess.run(["gcc", "-O2", "-shared", "-fPIC", str(source), "-o", str(lib)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"gcc cannot compile {source}: {out.stderr.strip()[:400]}")
        self.lib = ctypes.CDLL(str(lib))
        self.outputs = self.lib.n_outputs()
        self.lib.predict.argtypes = [ctypes.POINTER(ctypes.c_float)] * 2
        self.lib.predict.restype = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Outputs for a batch (one C call per sample)."""
        rows = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)
        out = np.zeros((len(rows), self.outputs), np.float32)
        ptr = ctypes.POINTER(ctypes.c_float)
        for i in range(len(rows)):
            self.lib.predict(rows[i].ctypes.data_as(ptr), out[i].ctypes.data_as(ptr))
        return out


def _test_split(request: RunRequest) -> tuple[np.ndarray, object]:

    if request.dataset is None:
        raise ValueError("a C baseline is trained on a data set; none was given")
    data = Dataset.load(request.dataset)
    return data.x_test, data


def evaluate(request: RunRequest) -> MetricMap:
    _, data = _test_split(request)
    return task_metrics(data, CompiledModel(request.artifact).predict, "measured")


def measure(request: RunRequest) -> MetricMap:
    x, _ = _test_split(request)
    model = CompiledModel(request.artifact)
    row = np.ascontiguousarray(x[:1].reshape(-1), dtype=np.float32)
    out = np.zeros(model.outputs, np.float32)
    ptr = ctypes.POINTER(ctypes.c_float)
    args = (row.ctypes.data_as(ptr), out.ctypes.data_as(ptr))
    predict = model.lib.predict
    return latency_stats(timed_invokes(lambda: predict(*args), request.warmup,
                                       request.repeats), "measured")


NATIVE = Runner(name="native", evaluate="bench.runners.native:evaluate",
                measure="bench.runners.native:measure", kind="host", artifacts=("c",),
                host_timing=True,
                description="generated C (classical baselines) compiled and run on the host")
