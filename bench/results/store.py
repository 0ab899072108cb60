"""Append-only result store: ``<root>/<suite>/<run_id>/records.jsonl`` plus ``run.json``.

Each record is one line of strict JSON written with a single ``write`` on an ``O_APPEND``
descriptor and fsynced, so a killed run leaves at most one torn final line, which resuming
truncates before appending. Reading goes line by line: a line that is not a valid record (not
UTF-8, not JSON, wrong field types) is skipped and reported with its file and line number
(:class:`BadLine`); the rest of the run reads as usual.

Nothing is written through a link (:mod:`bench.files`): below the store's root every folder and
file is opened without following one, so a link planted as ``records.jsonl`` or a run folder is
refused; the root itself is followed when the user named it. A full disk stops the write with
:class:`~bench.files.DiskFull` before a partial record could count as one.

Writing takes the run folder's lock (:mod:`bench.results.runlock`): a new or resumed run
exclusively, the processes joining a shared run id (pytest-xdist workers) shared; another writer
is refused with the holder's pid and host. Reading takes no lock.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import files
from bench.results import runlock
from bench.results.record import Record

log = logging.getLogger(__name__)
RECORDS = "records.jsonl"
MANIFEST = "run.json"
#: A longer line is skipped unread (a record is a few KiB).
MAX_LINE_BYTES = 16 << 20


@dataclass(frozen=True)
class BadLine:
    """A line of ``records.jsonl`` that is not a valid record, and why."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class RecordsRead:
    """What reading a run's records gave: the valid records and the skipped lines."""

    records: list[Record]
    bad_lines: list[BadLine]


def _lines(path: Path) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, bytes)`` of a file; bytes is None for a line over MAX_LINE_BYTES."""
    with path.open("rb") as f:
        for n in itertools.count(1):
            raw = f.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            if len(raw) > MAX_LINE_BYTES:
                while raw and not raw.endswith(b"\n"):  # skip the rest of the line
                    raw = f.readline(1 << 20)
                yield n, None
            else:
                yield n, raw


def parse_line(raw: bytes) -> Record:
    """One stored line as a :class:`Record`; ValueError saying why it is not one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 text (byte {e.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise ValueError("not a record (nested too deeply)") from None
    try:
        return Record.from_json(data)
    except RecursionError:
        raise ValueError("not a record (nested too deeply)") from None
    except (TypeError, KeyError, AttributeError) as e:  # a shape the checks did not foresee
        raise ValueError(f"not a record ({type(e).__name__}: {e})") from None


@dataclass(frozen=True)
class Run:
    suite: str
    run_id: str
    path: Path

    @property
    def records_path(self) -> Path:
        return self.path / RECORDS

    @property
    def root(self) -> Path:
        """The store's root (``<root>/<suite>/<run_id>``): links below it are not followed."""
        return self.path.parent.parent

    def manifest(self) -> dict[str, Any]:
        """The run's ``run.json``, or ``{}`` when it is missing or unreadable."""
        try:
            data = json.loads((self.path / MANIFEST).read_bytes())
        except (OSError, ValueError, RecursionError):  # missing, not UTF-8, not JSON
            return {}
        return data if isinstance(data, dict) else {}

    def read(self) -> RecordsRead:
        """The run's records and the lines skipped as not valid records (each logged)."""
        records, bad = [], []
        try:
            lines = list(_lines(self.records_path))
        except FileNotFoundError:
            return RecordsRead([], [])
        for n, raw in lines:
            if raw is not None and not raw.strip():
                continue
            try:
                if raw is None:
                    raise ValueError(f"line longer than {MAX_LINE_BYTES} bytes")
                records.append(parse_line(raw))
            except ValueError as e:
                why = str(e)[:300]
                if raw is not None and not raw.endswith(b"\n"):
                    why = f"torn final line (a killed run?): {why}"
                bad.append(BadLine(self.records_path, n, why))
                log.warning("skipping a stored record: %s", bad[-1])
        return RecordsRead(records, bad)

    def records(self) -> list[Record]:
        """The run's valid records; other lines are skipped and logged (see :meth:`read`)."""
        return self.read().records

    def append(self, record: Record) -> None:
        """Append one record as a line of strict JSON (NaN and infinities were removed by
        :meth:`Record.to_json`); takes the run's lock first unless this process holds it."""
        runlock.acquire(self.path)
        line = (json.dumps(record.to_json(), ensure_ascii=False, default=str,
                           allow_nan=False) + "\n").encode()
        size = self._size()
        try:
            files.append(self.records_path, line, self.root)
        except files.DiskFull:
            self._cut(size)  # a part of the line that fit would read as a torn record
            raise

    def _size(self) -> int:
        try:
            return os.stat(self.records_path, follow_symlinks=False).st_size
        except FileNotFoundError:
            return 0

    def _cut(self, size: int) -> None:
        """Truncate ``records.jsonl`` back to ``size`` bytes (a record that did not fit)."""
        try:
            fd = files.open_file(self.records_path, os.O_WRONLY, self.root)
        except OSError:
            return
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)

    def repair_tail(self) -> None:
        """Before resuming: take the run's lock (:class:`~bench.results.runlock.RunLocked` when
        another process is writing the run), then drop a torn final line (a run killed
        mid-write)."""
        runlock.acquire(self.path)
        path = self.records_path
        try:
            fd = files.open_file(path, os.O_RDWR, self.root)
        except FileNotFoundError:
            return
        with os.fdopen(fd, "r+b") as f:
            data = f.read()
            if not data or data.endswith(b"\n"):
                return
            keep = data.rfind(b"\n") + 1
            log.warning("%s: dropping a torn final line of %d bytes", path, len(data) - keep)
            f.truncate(keep)

    def release(self) -> None:
        """Give back this process's lock on the run (it also ends with the process)."""
        runlock.release(self.path)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def _chronological(run: Run) -> tuple[str, int, str]:
    try:
        written = (run.path / MANIFEST).stat().st_mtime_ns
    except OSError:
        written = 0
    return run.run_id.split("-", 1)[0], written, run.run_id


class Store:
    """The runs under ``root``. ``root_given``: the user named the root (a link there is then
    followed); a default root that is a link is refused when writing."""

    def __init__(self, root: Path | str = "results", root_given: bool = True) -> None:
        self.root = Path(root)
        self.root_given = root_given

    def create(self, suite: str, manifest: dict[str, Any], run_id: str | None = None) -> Run:
        """A new run folder, locked for this process; with ``run_id``, the run several
        processes share (pytest-xdist workers): the first creates it, the others join it and
        append to the same records, each holding the lock shared. Raises
        :class:`~bench.results.runlock.RunLocked` when another process writes that run
        exclusively."""
        shared = run_id is not None
        run_id = run_id or new_run_id()
        path = self.root / suite / run_id
        self.check_root()
        if not shared and os.path.lexists(path):
            raise FileExistsError(f"run folder {path} exists already")
        files.make_folder(path, self.root)
        runlock.acquire(path, "shared" if shared else "exclusive")
        if not os.path.lexists(path / MANIFEST):
            files.write_atomic(path / MANIFEST, json.dumps(
                {"suite": suite, "run_id": run_id, **manifest}, indent=1).encode(), self.root)
        os.close(files.open_file(path / RECORDS, os.O_WRONLY | os.O_CREAT, self.root))
        return Run(suite, run_id, path)

    def check_root(self) -> None:
        """Before writing: a root the user did not name must not be a link."""
        if not self.root_given and self.root.is_symlink():
            raise files.LinkRefused(
                f"the result store {self.root} is a symbolic link; edgebench does not write "
                f"through links it was not given (pass --results {self.root} to use it)")

    def runs(self, suite: str | None = None) -> list[Run]:
        """All runs, oldest first: by the UTC start second their ids begin with, then (runs
        started within one second) by when their manifest was written."""
        suites = [suite] if suite else sorted(p.name for p in self.root.glob("*") if p.is_dir())
        runs = [Run(s, p.name, p) for s in suites for p in (self.root / s).glob("*")
                if (p / RECORDS).exists()]
        return sorted(runs, key=_chronological)

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
