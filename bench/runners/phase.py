"""Worker entry for runner phases: JSON request in, JSON metrics (or a skip reason) out."""

from __future__ import annotations

from typing import Any

from bench.errors import Unsupported
from bench.registry import load_ref
from bench.runners.base import RunRequest


def run_phase(ref: str, request: dict[str, Any]) -> dict[str, Any]:
    """Call the phase function ``ref`` on ``request``: ``{"metrics": …}`` plus the raw
    ``samples_ns`` when the phase timed something (:class:`~bench.runners.io.Timed`); a
    :class:`bench.errors.Unsupported` (the runtime cannot run it) becomes
    ``{"skipped": reason}``."""
    try:
        metrics = load_ref(ref)(RunRequest.from_json(request))
    except Unsupported as e:
        return {"skipped": str(e)}
    out: dict[str, Any] = {"metrics": {name: m.to_json() for name, m in metrics.items()}}
    samples = getattr(metrics, "samples_ns", None)
    if samples is not None:
        out["samples_ns"] = samples
    for extra in ("details", "trace"):  # what an energy-mode phase adds (bench.runners.energy)
        if getattr(metrics, extra, None) is not None:
            out[extra] = getattr(metrics, extra)
    return out
