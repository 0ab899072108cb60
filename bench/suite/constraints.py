"""The suite's deployment checks (and the device's memory fit) evaluated on one cell's metrics,
and the deployment validation table of a record (``| Metric | Target | Achieved | Status |``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import Field

from bench import textable
from bench.errors import Strict
from bench.results.expected import expectations
from bench.results.formatting import significant
from bench.results.metrics import UNITS, Metric, higher_is_better
from bench.results.record import ConstraintResult, Record

if TYPE_CHECKING:
    from bench.devices.device import Device

#: Constraint names that read a metric in another unit: name → (metric, divisor).
ALIASES: dict[str, tuple[str, float]] = {
    "flash_kb": ("model_size", 1024.0),
    "ram_kb": ("arena_used", 1024.0),
    "latency_ms": ("latency_p50", 1.0),
    "realtime": ("latency_p50", 1.0),  # {rate_hz: R}: latency_p50 ≤ 1000 / R ms
    "energy_uj": ("energy_uj", 1.0),  # µJ per inference
}
#: Unit of a constraint's value (after the alias's divisor); other names use ``UNITS``.
CONSTRAINT_UNITS = {"flash_kb": "KB", "ram_kb": "KB", "latency_ms": "ms", "realtime": "ms",
                    "energy_uj": "µJ", "fits_flash": "KB", "fits_ram": "KB"}


class Constraint(Strict):
    """A limit on one metric: ``max``/``min`` absolute bounds, or a maximum loss against a
    reference variant (``min_delta_vs`` + ``max_loss``)."""

    max: float | None = None
    min: float | None = None
    min_delta_vs: str | None = None
    max_loss: float | None = None
    rate_hz: float | None = Field(None, gt=0)  # `realtime` only: latency_p50 ≤ 1000 / rate_hz

    def model_post_init(self, _context: Any) -> None:
        if (self.max is None and self.min is None and self.max_loss is None
                and self.rate_hz is None):
            raise ValueError("a constraint needs `max`, `min`, `rate_hz` (realtime), or "
                             "`min_delta_vs` with `max_loss`")
        if (self.min_delta_vs is None) != (self.max_loss is None):
            raise ValueError("`min_delta_vs` and `max_loss` go together")


def known_names() -> list[str]:
    return sorted({*ALIASES, *UNITS})


def rule_problems(name: str, rule: Constraint) -> list[str]:
    """What is wrong with constraint ``name`` beyond its own fields (for the suite validator)."""
    rate = getattr(rule, "rate_hz", None)
    if name == "realtime" and rate is None:
        return ["`realtime` needs `rate_hz` (the sensor rate; passes when latency_p50 ≤ "
                "1000 / rate_hz ms)"]
    if rate is not None and name != "realtime":
        return [f"`rate_hz` only applies to the `realtime` constraint, not to {name!r}"]
    return []


def _fmt(x: float) -> str:
    return significant(x, 4)


def check(name: str, rule: Constraint, metrics: dict[str, Metric],
          reference: Callable[[str], dict[str, Metric] | None]) -> ConstraintResult:
    """Evaluate one constraint. ``reference(variant_id)`` gives that variant's metrics for the
    same model and device (or None when it has none). ``rate_hz`` (the ``realtime`` check)
    bounds the value by ``1000 / rate_hz`` ms."""
    metric_name, divisor = ALIASES.get(name, (name, 1.0))
    m = metrics.get(metric_name)
    value = None if m is None else m.value / divisor
    limits: list[str] = []
    passed: bool | None = None if value is None else True
    bounds: list[tuple[str, float, Callable[[float, float], bool]]] = []
    if rule.max is not None:
        bounds.append((f"≤ {_fmt(rule.max)}", rule.max, lambda v, b: v <= b))
    if rule.min is not None:
        bounds.append((f"≥ {_fmt(rule.min)}", rule.min, lambda v, b: v >= b))
    rate = getattr(rule, "rate_hz", None)
    if rate is not None:
        bounds.append((f"≤ {_fmt(1000.0 / rate)} ms ({_fmt(rate)} Hz)", 1000.0 / rate,
                       lambda v, b: v <= b))
    for label, bound, ok in bounds:
        limits.append(label)
        if value is not None:
            passed = bool(passed) and ok(value, bound)
    if rule.min_delta_vs is not None and rule.max_loss is not None:
        limits.append(f"loss vs {rule.min_delta_vs} ≤ {_fmt(rule.max_loss)}")
        ref = (reference(rule.min_delta_vs) or {}).get(metric_name)
        if value is None or ref is None:
            passed = None
        else:
            delta = value - ref.value / divisor
            loss = -delta if higher_is_better(metric_name) in (True, None) else delta
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


# --- the deployment validation table -----------------------------------------------------------

def _unit(name: str, result: ConstraintResult) -> str:
    return CONSTRAINT_UNITS.get(name, UNITS.get(result.metric, ""))


def validation_rows(record: Record) -> list[dict[str, Any]]:
    """One row per constraint of ``record``: metric, target, achieved (with unit and, when the
    figure is not a measurement on this machine, how it was obtained) and status."""
    rows = []
    expected = expectations(record.details)
    for name, c in record.constraints.items():
        unit = _unit(name, c)
        target = c.limit if not unit or unit in c.limit else f"{c.limit} {unit}"
        if c.value is None:
            achieved = f"— (no {c.metric})"
        else:
            achieved = f"{_fmt(c.value)} {unit}".rstrip()
            method = getattr(record.metrics.get(c.metric), "method", "measured")
            if method not in ("measured", "build"):
                achieved += f" ({method})"
        status = {True: "✓ pass", False: "✗ FAIL", None: "– n/a"}[c.passed]
        if name in expected:
            status += " (expected)" if c.passed is False else " (expected to miss)"
        rows.append({"metric": name, "target": target, "achieved": achieved, "status": status,
                     "passed": c.passed})
    return rows


def render_validation(record: Record) -> str:
    """The deployment validation table of one record, as a markdown table whose columns are
    padded so it also reads well in a terminal."""
    header = ["Metric", "Target", "Achieved", "Status"]
    rows = validation_rows(record)
    body = [[r["metric"], r["target"], r["achieved"], r["status"]] for r in rows]
    if not body:
        return f"{record.cell_id}: no deployment checks"
    passed = sum(r["passed"] is True for r in rows)
    applicable = sum(r["passed"] is not None for r in rows)
    title = f"{record.cell_id} — {passed}/{applicable} checks passed"
    return "\n".join([title, "", textable.render(header, body, style="markdown")])
