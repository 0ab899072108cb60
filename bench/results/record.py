"""The result record: one JSON object per cell, schema-versioned, upgraded step by step.

Written as strict JSON (:meth:`Record.to_json`): a metric that is NaN or infinite (a diverged
training) is left out of ``metrics``, any other such number becomes null, and each is listed in
``details["not_finite"]`` (``{"metrics.mae": "nan"}``). Read back with its types checked
(:meth:`Record.from_json` raises :class:`RecordError` saying what is wrong).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from bench.results.metrics import Metric

SCHEMA = 2
Status = Literal["ok", "failed", "skipped"]
STATUSES: tuple[str, ...] = get_args(Status)
TEXT_FIELDS = ("suite", "run_id", "cell_id", "model", "variant", "device", "runner")
MAPPING_FIELDS = ("metrics", "constraints", "details", "provenance")

#: Keys a stored metric must have, and those it may have (an estimate's 80 % interval).
METRIC_KEYS = {"value", "unit", "method"}
METRIC_OPTIONAL = {"low", "high"}


def _from_1(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 lets a metric carry ``low`` and ``high``; a schema-1 record has none."""
    return data


#: ``UPGRADES[n]`` turns a schema-``n`` record dict into schema ``n + 1``.
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _from_1}


@dataclass
class ConstraintResult:
    """One row of the deployment validation table. ``passed`` is None when the metric is
    missing (the check does not apply to this cell)."""

    metric: str
    limit: str
    value: float | None
    passed: bool | None


@dataclass
class Record:
    suite: str
    run_id: str
    cell_id: str
    model: str
    variant: str
    device: str
    runner: str
    status: Status
    artifact_sha256: str | None = None
    error: dict[str, str] | None = None  # {"kind": ..., "message": ...}
    metrics: dict[str, Metric] = field(default_factory=dict)
    constraints: dict[str, ConstraintResult] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # build facts, data set, options
    provenance: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA

    def to_json(self) -> dict[str, Any]:
        """The record as strict JSON data (no NaN or infinity; see the module docstring)."""
        data = asdict(self)
        data["metrics"] = {k: m.to_json() for k, m in self.metrics.items()}
        return finite(data)

    @classmethod
    def from_json(cls, data: Any) -> Record:
        """A stored record, upgraded to the current schema; :class:`RecordError` when its
        shape or a field's type is wrong."""
        if not isinstance(data, dict):
            raise RecordError(f"a record is a JSON object, not {_kind(data)}")
        schema = data.get("schema", 1)
        if not _is_int(schema) or schema < 1:
            raise RecordError(f"schema: expected a version number ≥ 1, got {schema!r}"[:200])
        data = finite(upgrade(dict(data)))
        check_fields(data)
        data["metrics"] = {k: Metric.from_json(m) for k, m in data["metrics"].items()}
        data["constraints"] = {k: ConstraintResult(**c) for k, c in data["constraints"].items()}
        return cls(**data)

    def value(self, name: str) -> float | None:
        m = self.metrics.get(name)
        return None if m is None else m.value


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a stored record to the current schema, one version at a time."""
    version = data.get("schema", 1)
    if version > SCHEMA:
        raise ValueError(f"record schema {version} is newer than this edgebench ({SCHEMA}); "
                         "upgrade edgebench to read it")
    while version < SCHEMA:
        data = UPGRADES[version](data)
        version += 1
        data["schema"] = version
    return data


class RecordError(ValueError):
    """A stored record whose shape or field types are wrong; the message names the field."""


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _expect(ok: bool, where: str, what: str, value: Any) -> None:
    if not ok:
        raise RecordError(f"{where}: expected {what}, got {_kind(value)}")


def check_fields(data: dict[str, Any]) -> None:
    """Raise :class:`RecordError` unless ``data`` (a current-schema record) has the fields
    and types of a :class:`Record`."""
    known = {f for f in Record.__dataclass_fields__}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RecordError(f"unknown field {unknown[0]!r}")
    for name in TEXT_FIELDS:
        _expect(isinstance(data.get(name), str), name, "a string", data.get(name))
    status = data.get("status")
    if status not in STATUSES:
        raise RecordError(f"status: expected one of {', '.join(STATUSES)}, got {status!r}"[:200])
    sha = data.get("artifact_sha256")
    _expect(sha is None or isinstance(sha, str), "artifact_sha256", "a string or null", sha)
    error = data.get("error")
    _expect(error is None or (isinstance(error, dict) and all(
        isinstance(v, str) for v in error.values())), "error",
        "null or an object of strings", error)
    for name in MAPPING_FIELDS:
        data.setdefault(name, {})
        _expect(isinstance(data[name], dict), name, "an object", data[name])
    for name, m in data["metrics"].items():
        where = f"metrics.{name}"
        _expect(isinstance(m, dict), where, "an object", m)
        _expect(_is_number(m.get("value")), f"{where}.value", "a number", m.get("value"))
        _expect(isinstance(m.get("unit"), str), f"{where}.unit", "a string", m.get("unit"))
        _expect(isinstance(m.get("method"), str), f"{where}.method", "a string",
                m.get("method"))
        if not METRIC_KEYS <= set(m) <= METRIC_KEYS | METRIC_OPTIONAL:
            raise RecordError(f"{where}: expected the keys value, unit, method (and low, high "
                              f"for an interval), got {', '.join(sorted(m))}"[:200])
        for bound in METRIC_OPTIONAL & set(m):
            _expect(m[bound] is None or _is_number(m[bound]), f"{where}.{bound}",
                    "a number or null", m[bound])
    for name, c in data["constraints"].items():
        where = f"constraints.{name}"
        _expect(isinstance(c, dict), where, "an object", c)
        if set(c) != set(ConstraintResult.__dataclass_fields__):
            raise RecordError(f"{where}: expected the keys metric, limit, value, passed")
        _expect(isinstance(c["metric"], str), f"{where}.metric", "a string", c["metric"])
        _expect(isinstance(c["limit"], str), f"{where}.limit", "a string", c["limit"])
        _expect(c["value"] is None or _is_number(c["value"]), f"{where}.value",
                "a number or null", c["value"])
        _expect(c["passed"] is None or isinstance(c["passed"], bool), f"{where}.passed",
                "true, false or null", c["passed"])


def _not_finite(value: Any) -> str | None:
    """``"nan"``, ``"inf"`` or ``"-inf"`` for a non-finite real number, else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return None if math.isfinite(number) else str(number)


def _plain(value: Any) -> bool:
    """Whether ``value`` is already strict JSON data (dicts, lists, strings, booleans, None, ints
    and finite floats of the built-in types): :func:`_nulled` would change nothing. The fast
    path of reading a stored record, whose values are nearly always plain."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is dict:
        return all(map(_plain, value.values()))
    if kind is list:
        return all(map(_plain, value))
    return False


def _nulled(value: Any, path: str, notes: dict[str, str]) -> Any:
    """``value`` with every non-finite number replaced by None (noted under its path)."""
    if isinstance(value, dict):
        return {k: _nulled(v, f"{path}.{k}", notes) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nulled(v, f"{path}[{i}]", notes) for i, v in enumerate(value)]
    if (bad := _not_finite(value)) is not None:
        notes[path] = bad
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool | int | float):
        return int(value) if isinstance(value, numbers.Integral) else float(value)  # NumPy
    return value


def finite(data: dict[str, Any]) -> dict[str, Any]:
    """Record data without NaN or infinities: such a metric is left out of ``metrics``, any
    other such number becomes None; each is listed in ``details["not_finite"]``."""
    notes: dict[str, str] = {}
    metrics = data.get("metrics")
    if isinstance(metrics, dict):
        kept = {}
        for name, m in metrics.items():
            bad = _not_finite(m.get("value")) if isinstance(m, dict) else None
            if bad is None:
                kept[name] = m
            else:
                notes[f"metrics.{name}"] = bad
        data = {**data, "metrics": kept}
    data = {k: v if _plain(v) else _nulled(v, k, notes) for k, v in data.items()}
    details = data.get("details", {})
    if notes and isinstance(details, dict):  # a malformed `details` is left for the check
        earlier = details.get("not_finite")
        data["details"] = {**details, "not_finite": {
            **(earlier if isinstance(earlier, dict) else {}), **notes}}
    return data
