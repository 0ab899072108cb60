"""Append-only result store: ``<root>/<suite>/<run_id>/records.jsonl`` plus ``run.json``.

Each record is one line written with a single ``write`` on an ``O_APPEND`` descriptor and
fsynced, so a killed run leaves at most one torn final line, which loading skips and resuming
truncates before appending.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.cache import write_atomic
from bench.record import Record

log = logging.getLogger(__name__)
RECORDS = "records.jsonl"
MANIFEST = "run.json"


@dataclass(frozen=True)
class Run:
    suite: str
    run_id: str
    path: Path

    @property
    def records_path(self) -> Path:
        return self.path / RECORDS

    def manifest(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / MANIFEST).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def records(self) -> list[Record]:
        """The run's records, skipping (and logging) a torn or unreadable line."""
        out = []
        try:
            lines = self.records_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                out.append(Record.from_json(json.loads(line)))
            except (json.JSONDecodeError, TypeError, KeyError, ValueError) as e:
                log.warning("%s:%d: skipping unreadable record (%s)", self.records_path, n, e)
        return out

    def append(self, record: Record) -> None:
        line = (json.dumps(record.to_json(), ensure_ascii=False, default=str) + "\n").encode()
        fd = os.open(self.records_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def repair_tail(self) -> None:
        """Drop a torn final line (a run killed mid-write) before appending more."""
        path = self.records_path
        if not path.exists() or path.stat().st_size == 0:
            return
        data = path.read_bytes()
        if data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        log.warning("%s: dropping a torn final line of %d bytes", path, len(data) - keep)
        with path.open("r+b") as f:
            f.truncate(keep)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


class Store:
    def __init__(self, root: Path | str = "results") -> None:
        self.root = Path(root)

    def create(self, suite: str, manifest: dict[str, Any], run_id: str | None = None) -> Run:
        """A new run folder; with ``run_id``, the run several processes share (pytest-xdist
        workers): the first creates it, the others join it and append to the same records."""
        shared = run_id is not None
        run_id = run_id or new_run_id()
        path = self.root / suite / run_id
        path.mkdir(parents=True, exist_ok=shared)
        if not (path / MANIFEST).exists():
            write_atomic(path / MANIFEST, json.dumps(
                {"suite": suite, "run_id": run_id, **manifest}, indent=1).encode())
        (path / RECORDS).touch()
        return Run(suite, run_id, path)

    def runs(self, suite: str | None = None) -> list[Run]:
        """All runs, oldest first (run ids start with their UTC start time)."""
        suites = [suite] if suite else sorted(p.name for p in self.root.glob("*") if p.is_dir())
        runs = [Run(s, p.name, p) for s in suites for p in (self.root / s).glob("*")
                if (p / RECORDS).exists()]
        return sorted(runs, key=lambda r: r.run_id)

    def latest(self, suite: str | None = None) -> Run | None:
        runs = self.runs(suite)
        return runs[-1] if runs else None

    def find(self, run_id: str) -> Run:
        """A run by id (or unique id prefix), or by ``suite/run_id``."""
        matches = [r for r in self.runs() if r.run_id.startswith(run_id)
                   or f"{r.suite}/{r.run_id}".startswith(run_id)]
        if len(matches) != 1:
            what = "no run" if not matches else f"{len(matches)} runs"
            raise LookupError(f"{what} matching {run_id!r} under {self.root}")
        return matches[0]
