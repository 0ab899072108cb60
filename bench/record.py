"""The result record: one JSON object per cell, schema-versioned, upgraded step by step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from bench.metrics import Metric

SCHEMA = 1
Status = Literal["ok", "failed", "skipped"]

#: ``UPGRADES[n]`` turns a schema-``n`` record dict into schema ``n + 1``.
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


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
        data = asdict(self)
        data["metrics"] = {k: m.to_json() for k, m in self.metrics.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        data = upgrade(dict(data))
        data["metrics"] = {k: Metric.from_json(m) for k, m in data.get("metrics", {}).items()}
        data["constraints"] = {k: ConstraintResult(**c)
                               for k, c in data.get("constraints", {}).items()}
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
