"""edgebench: benchmark edge and TinyML models across compression variants and devices.

The public API, imported on first use so that ``import bench`` stays free of TensorFlow::

    import bench
    suite = bench.load_suite("suites/quickstart.yaml")
    run = bench.run_suite(suite, "results")
    for record in run.records():  # bench.Record
        print(record.cell_id, record.status, record.value("latency_p50"))

The plugin registries are ``bench.registry.models``, ``.datasets``, ``.variant_steps``,
``.runners`` and ``.executors`` (``bench.models`` and the like are the built-ins' packages;
ARCHITECTURE.md lists the axes with their base types).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name → "module:attribute", resolved lazily by :func:`__getattr__`
_API = {
    "load_suite": "bench.suite.spec:load_suite",
    "run_suite": "bench.run.session:run_suite",
    "Suite": "bench.suite.spec:Suite",
    "Record": "bench.results.record:Record",
    "Metric": "bench.results.metrics:Metric",
    "Store": "bench.results.store:Store",
    "load_device": "bench.devices.device:load_device",
    "SpecError": "bench.errors:SpecError",
    "Runner": "bench.runners.base:Runner",
    "registry": "bench:registry",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'bench' has no attribute {name!r}")
    module, _, attr = _API[name].partition(":")
    value = (importlib.import_module(f"bench.{attr}") if module == "bench"
             else getattr(importlib.import_module(module), attr))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
