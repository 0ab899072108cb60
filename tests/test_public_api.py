"""``bench``'s public API resolves lazily: importing the package loads no TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pytest

import bench


def test_import_bench_stays_light() -> None:
    code = ("import sys, bench; bench.load_suite; bench.Record; bench.registry.runners.names(); "
            "heavy = [m for m in ('tensorflow', 'tf_keras', 'ai_edge_litert', 'tflite_micro') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_every_public_name_resolves() -> None:
    from bench import registry
    from bench.suite.spec import load_suite

    assert bench.load_suite is load_suite
    assert bench.registry is registry and "litert" in bench.registry.runners
    for name in bench.__all__:
        assert getattr(bench, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        bench.nope  # noqa: B018
