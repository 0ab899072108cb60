"""Functions the worker tests call in a subprocess: a result, an exception, a crash, a hang."""

from __future__ import annotations

import ctypes
import os
import time


def add(a: int, b: int) -> int:
    return a + b


def fail(message: str) -> None:
    raise RuntimeError(message)


def segfault() -> None:
    print("about to dereference NULL", flush=True)
    ctypes.string_at(0)


def abort() -> None:
    os.abort()


def hang(seconds: float, pid_file: str | None = None) -> None:
    if pid_file:
        with open(pid_file, "w") as f:
            f.write(str(os.getpid()))
    time.sleep(seconds)


def exit_quietly() -> None:
    os._exit(3)


def thread_sum(values: list[int]) -> int:
    """Sum through a thread pool (imports the standard library's ``concurrent``)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        return sum(pool.map(int, values))


def allocate(mb: int) -> int:
    """Allocate ``mb`` MB with NumPy and touch it."""
    import numpy as np

    return int(np.ones(mb << 20, np.uint8).sum())


def segfault_in(doing: str) -> None:
    """Leave a breadcrumb, then die of SIGSEGV without a word."""
    from bench import breadcrumb

    breadcrumb.leave(doing)
    ctypes.string_at(0)
def open_in_tflm(request: object) -> dict:
    """A runner phase that opens its artifact in TFLite Micro without the runner's rules."""
    from bench.artifacts.tflite_info import inspect
    from bench.runners.tflm import open_model

    data = request.artifact.read_bytes()  # type: ignore[attr-defined]
    open_model(data, inspect(data))
    return {}
