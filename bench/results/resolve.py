"""A cell id (``model/variant@device`` or ``model/variant``) of a stored run → its model's bytes,
from the content-addressed cache, with the arena size the tflm runner measured for it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.artifacts.cache import Cache
from bench.artifacts.export import c_identifier, find_artifact
from bench.results.store import Store


@dataclass(frozen=True)
class Resolved:
    """A model found for export: its bytes, where it came from, a default C name, the arena."""

    tflite: bytes
    source: str
    name: str
    arena_bytes: int | None = None


def resolve(target: str, store: Store, cache: Cache, run: str | None = None) -> Resolved:
    """A ``.tflite`` path, or a cell id (``model/variant@device`` or ``model/variant``) looked up
    in ``run`` (default: the latest run of the store). The arena is the ``arena_used`` a record
    of the same artifact holds (the cell's own first)."""
    path = Path(target)
    if path.suffix == ".tflite" or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"model file {path} does not exist")
        return Resolved(path.read_bytes(), str(path), c_identifier(path.stem))
    found = store.find(run) if run else store.latest()
    if found is None:
        raise LookupError(f"no runs under {store.root}; run a suite or pass a .tflite file")
    records = found.records()
    matches = [r for r in records if target in (r.cell_id, f"{r.model}/{r.variant}")]
    if not matches:
        raise LookupError(f"no cell {target!r} in run {found.suite}/{found.run_id} (cells look "
                          "like model/variant@device)")
    built = [r for r in matches if r.artifact_sha256]
    if not built:
        reason = matches[0].error["message"] if matches[0].error else matches[0].status
        raise LookupError(f"cell {target!r} has no artifact in run {found.run_id}: {reason}")
    sha = built[0].artifact_sha256
    artifact = find_artifact(sha, cache)
    same = [r for r in built if r.artifact_sha256 == sha]
    same += [r for r in records if r.artifact_sha256 == sha and r not in same]
    arena = next((int(v) for r in same if (v := r.value("arena_used")) is not None), None)
    record = built[0]
    return Resolved(artifact.read_bytes(), f"{record.cell_id} ({found.suite}/{found.run_id})",
                    c_identifier(f"{record.model}_{record.variant}"), arena)
