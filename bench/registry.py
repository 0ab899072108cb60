"""One generic registry for every plugin axis: models, datasets, variant steps, runners,
executors, power monitors (ARCHITECTURE.md lists them with their base types).

Built-ins are registered lazily as ``"module:attr"`` strings so that importing :mod:`bench` does
not import TensorFlow; third parties add theirs through entry points (``edgebench.<axis>``).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from bench.errors import unknown

log = logging.getLogger(__name__)

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that no plugin of this axis is registered under."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, known
        super().__init__(unknown(kind, name, sorted(known)))

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return self.args[0]


def load_ref(ref: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module_name, _, attr = ref.partition(":")
    if not attr:
        raise ValueError(f"lazy reference {ref!r} must look like 'module:attr'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """Plugins of one axis, keyed by name; entries resolve on first use."""

    def __init__(self, kind: str, entry_point_group: str) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, T | str] = {}
        self._entry_points_loaded = False

    def register(self, name: str, target: T | str | None = None) -> Callable[[T], T] | None:
        """Register ``target`` (an object or a lazy ``"module:attr"``), or decorate one."""
        if target is not None:
            self._entries[name] = target
            return None

        def decorator(obj: T) -> T:
            self._entries[name] = obj
            return obj

        return decorator

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            self._entries.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._entries

    def get(self, name: str) -> T:
        """The plugin registered as ``name``; :class:`UnknownNameError` names the closest one."""
        self._load_entry_points()
        if name not in self._entries:
            raise UnknownNameError(self.kind, name, list(self._entries))
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = load_ref(entry)
            self._entries[name] = entry
        return entry  # type: ignore[return-value]


models: Registry[Any] = Registry("model builder", "edgebench.models")
datasets: Registry[Any] = Registry("dataset", "edgebench.datasets")
variant_steps: Registry[Any] = Registry("variant step", "edgebench.variants")
runners: Registry[Any] = Registry("runner", "edgebench.runners")
executors: Registry[Any] = Registry("executor", "edgebench.executors")
monitors: Registry[Any] = Registry("power monitor", "edgebench.monitors")

for _name, _ref in {
    "har_mlp": "bench.models.seeds:HAR_MLP",
    "hvac_lstm": "bench.models.seeds:HVAC_LSTM",
    "volume_autoencoder": "bench.models.seeds:VOLUME_AUTOENCODER",
    "ds_cnn_kws": "bench.models.mlperf_tiny:DS_CNN_KWS",
    "mobilenet_v1_025_vww": "bench.models.mlperf_tiny:MOBILENET_V1_025_VWW",
    "resnet8_ic": "bench.models.mlperf_tiny:RESNET8_IC",
    "fc_autoencoder_ad": "bench.models.mlperf_tiny:FC_AUTOENCODER_AD",
    "linear_regression": "bench.models.classical:LINEAR_REGRESSION",
    "random_forest": "bench.models.classical:RANDOM_FOREST",
    "digits_cnn": "bench.models.cnn:DIGITS_CNN",
    "digits_cnn_torch": "bench.models.torch_cnn:DIGITS_CNN_TORCH",
}.items():
    models.register(_name, _ref)

for _name, _ref in {
    "har_synthetic": "bench.datasets.har:HAR_SYNTHETIC",
    "basic_motions": "bench.datasets.basic_motions:BASIC_MOTIONS",
    "hvac_building": "bench.datasets.hvac:HVAC_BUILDING",
    "volume_anomaly": "bench.datasets.volume:VOLUME_ANOMALY",
    "digits": "bench.datasets.digits:DIGITS",
}.items():
    datasets.register(_name, _ref)

for _name, _ref in {
    "quantize": "bench.variants.quantize:QUANTIZE",
    "distill": "bench.variants.distill:DISTILL",
    "prune": "bench.variants.prune:PRUNE",
    "qat": "bench.variants.qat:QAT",
    "int4": "bench.variants.int4:INT4",
    "cluster": "bench.variants.cluster:CLUSTER",
}.items():
    variant_steps.register(_name, _ref)

for _name, _ref in {
    "litert": "bench.runners.litert:LITERT",
    "tflm": "bench.runners.tflm:TFLM",
    "native": "bench.runners.native:NATIVE",
    "estimate": "bench.runners.estimate:ESTIMATE",
    "serial": "bench.runners.serial:SERIAL",
    "qemu": "bench.runners.qemu:QEMU",
}.items():
    runners.register(_name, _ref)

executors.register("local", "bench.run.executors.local:LOCAL")
executors.register("ray", "bench.run.executors.ray_executor:RAY")

for _name, _ref in {
    "lpm01a": "bench.monitors.lpm01a:LPM01A_KIND",
    "joulescope": "bench.monitors.joulescope:JOULESCOPE_KIND",
    "virtual": "bench.monitors.lpm01a:VIRTUAL_KIND",
}.items():
    monitors.register(_name, _ref)
