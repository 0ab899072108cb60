"""The suite's deployment checks (and the device's memory fit) evaluated on one cell's metrics."""

from __future__ import annotations

from collections.abc import Callable

from bench.devices import Device
from bench.metrics import TASK_METRICS, UNITS, Metric
from bench.record import ConstraintResult
from bench.spec import Constraint

#: Constraint names that read a metric in another unit: name → (metric, divisor).
ALIASES: dict[str, tuple[str, float]] = {
    "flash_kb": ("model_size", 1024.0),
    "ram_kb": ("arena_used", 1024.0),
    "latency_ms": ("latency_p50", 1.0),
}
HIGHER_IS_BETTER = {name: better for task in TASK_METRICS.values()
                    for name, better in task.items()}


def known_names() -> list[str]:
    return sorted({*ALIASES, *UNITS})


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def check(name: str, rule: Constraint, metrics: dict[str, Metric],
          reference: Callable[[str], dict[str, Metric] | None]) -> ConstraintResult:
    """Evaluate one constraint. ``reference(variant_id)`` gives that variant's metrics for the
    same model and device (or None when it has none)."""
    metric_name, divisor = ALIASES.get(name, (name, 1.0))
    m = metrics.get(metric_name)
    value = None if m is None else m.value / divisor
    limits, passed = [], None if value is None else True
    if rule.max is not None:
        limits.append(f"≤ {_fmt(rule.max)}")
        passed = passed and value <= rule.max if value is not None else None
    if rule.min is not None:
        limits.append(f"≥ {_fmt(rule.min)}")
        passed = passed and value >= rule.min if value is not None else None
    if rule.min_delta_vs is not None and rule.max_loss is not None:
        limits.append(f"loss vs {rule.min_delta_vs} ≤ {_fmt(rule.max_loss)}")
        ref_metrics = reference(rule.min_delta_vs) or {}
        ref = ref_metrics.get(metric_name)
        if value is None or ref is None:
            passed = None
        else:
            delta = value - ref.value / divisor
            loss = -delta if HIGHER_IS_BETTER.get(metric_name, True) else delta
            passed = bool(passed) and loss <= rule.max_loss
    return ConstraintResult(metric=metric_name, limit=" and ".join(limits), value=value,
                            passed=passed)


def device_fit(device: Device, metrics: dict[str, Metric]) -> dict[str, ConstraintResult]:
    """Does the model fit the board's flash and RAM (when the device file states them)?"""
    out = {}
    for name, metric_name, capacity_kb in (("fits_flash", "model_size", device.memory.flash_kb),
                                           ("fits_ram", "arena_used", device.memory.ram_kb)):
        if capacity_kb is None:
            continue
        m = metrics.get(metric_name)
        out[name] = ConstraintResult(
            metric=metric_name, limit=f"≤ {_fmt(capacity_kb)} KB ({device.id})",
            value=None if m is None else m.value / 1024,
            passed=None if m is None else m.value <= capacity_kb * 1024)
    return out
