"""The coefficient table ``edgebench calibrate`` writes and ``edgebench estimate`` reads.

Schema 2 (JSON): ``parameters`` (name → value), ``covariance`` (``names``, ``matrix``: the
fit's Laplace covariance), ``sigma`` (residual sd of log latency), ``releases`` (each
runtime's release slots in order), ``rounds``, ``structure`` (the structural options chosen),
``intervals`` (``known_model`` / ``new_model``: the standardised quantiles of the 80 %
interval), ``power`` (``boards``: each measured board's mW/MHz at its clock, published or from
records; ``cores``: a core's typical mW/MHz; ``log_sd``: the spread of a figure by kind —
``measured``, ``datasheet``, ``typical`` — see :mod:`bench.estimate.power`; older tables have
only ``power_mw_per_mhz`` and ``power_log_sd``, the cores and their spread), ``priors``,
``data`` (what it was fitted on, with SHA-256 hashes) and ``evaluation`` (the inner
cross-validation scores). Schema 1 tables (before releases and intervals) are refused with the
command that refits them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from bench.estimate.design import EstimateError
from bench.estimate.fit import Fitted, from_json
from bench.estimate.interval import Interval
from bench.estimate.power import DEFAULT_LOG_SD, check_block, default_spreads

SCHEMA = 2
KIND = "edgebench estimator coefficients"


@dataclass(frozen=True)
class Coefficients:
    """A coefficient table: the fit, its intervals, and where it comes from."""

    fitted: Fitted
    intervals: dict[str, Interval]
    source: str = "packaged"
    meta: dict[str, Any] = field(default_factory=dict)  # the whole file

    @property
    def params(self) -> dict[str, float]:
        return self.fitted.params

    def get(self, name: str) -> float:
        return float(self.params.get(name, 0.0))

    def knows(self, prefix: str, name: str) -> bool:
        return f"{prefix}.{name}" in self.params

    @property
    def model_hashes(self) -> set[str]:
        """SHA-256 of the models the table was fitted on (their estimates are ``known_model``)."""
        models = self.meta.get("data", {}).get("models", {})
        return {m["sha256"] for m in models.values() if isinstance(m, dict) and "sha256" in m}

    @property
    def power_log_sd(self) -> float:
        """How far a board's power strays from a typical figure (log sd; what widens energy
        intervals): the table's, or :data:`power.DEFAULT_LOG_SD` for a table without one."""
        return float(self.meta.get("power_log_sd", DEFAULT_LOG_SD))

    @property
    def power(self) -> dict[str, Any]:
        """The table's ``power`` block (``boards``, ``cores``, ``log_sd``); a table from
        before boards had their own power gives its cores and their spread only."""
        block = self.meta.get("power")
        if isinstance(block, dict):
            return {"boards": dict(block.get("boards") or {}),
                    "cores": dict(block.get("cores") or {}),
                    "log_sd": {**default_spreads(), **(block.get("log_sd") or {})}}
        return {"boards": {}, "cores": dict(self.meta.get("power_mw_per_mhz") or {}),
                "log_sd": {**default_spreads(), "typical": self.power_log_sd}}

    def releases(self, runtime: str) -> list[str]:
        """The runtime's release slots in order (``7.3``, ``as of v1.0``)."""
        return [s.release or f"as of {s.round}" for s in self.fitted.slots.get(runtime, [])]

    def provenance(self) -> dict[str, Any]:
        """What a record or an estimate says about the table it used."""
        return {"table": self.source, "schema": self.meta.get("schema"),
                "fitted": self.meta.get("fitted"),
                "data_sha256": self.meta.get("data", {}).get("sha256"),
                "systems": len(self.meta.get("systems", []))}

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str) -> Coefficients:
        if not isinstance(data, dict) or data.get("kind") != KIND:
            raise EstimateError(f"{source}: not an edgebench coefficient table")
        if data.get("schema") == 1:
            raise EstimateError(f"{source}: a schema-1 coefficient table (before runtime "
                                f"releases and intervals); refit it with `edgebench calibrate "
                                f"--results CSV --models-dir DIR --out FILE`")
        if data.get("schema") != SCHEMA:
            raise EstimateError(f"{source}: coefficient table schema {data.get('schema')!r}; "
                                f"this edgebench reads schema {SCHEMA}")
        try:
            fitted = from_json(data)
            intervals = {k: Interval.from_json(v) for k, v in data["intervals"].items()}
            check_block(data.get("power"))
        except (KeyError, TypeError, ValueError) as e:
            raise EstimateError(f"{source}: malformed coefficient table ({type(e).__name__}: "
                                f"{e})") from None
        return cls(fitted, intervals, source, data)


def load_coefficients(path: Path | str | None = None) -> Coefficients:
    """The table at ``path``, or the one shipped in the package (fitted on all the data)."""
    if path is None:
        text = resources.files("bench.estimate").joinpath("coefficients.json").read_text()
        source = "bench/estimate/coefficients.json (packaged)"
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"coefficient table {path} not found")
        text, source = path.read_text(), str(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EstimateError(f"{source}: not JSON: {exc}") from None
    return Coefficients.from_json(data, source)
