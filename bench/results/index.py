"""A run's index: a SQLite database beside ``records.jsonl``, rebuilt from it whenever needed.

``records.jsonl`` stays the source of truth. ``<run>/.records.index`` (SQLite, from the standard
library) holds for each valid line its row of :func:`bench.results.table.frame` (one SQL column
per frame column), its note, whether its timing was unstable, its raw-samples path and its byte
offset; the lines skipped as not valid records; and each frame column whole (``series``: an
int64/float64 array, check codes or a JSON list of text) so a frame is built column by column.
The readers of whole runs (``show``, ``results``, ``compare``, the leaderboard) query it instead
of parsing every line.

Kept current from the file itself: the index notes the file's device and inode, the offset up
to which it read whole lines, its mtime then, and a digest of the 4 KiB before that offset. A
file that only grew (the store is append-only) gets just its new lines indexed; anything else
(rewritten, truncated, replaced) rebuilds the index, as does an index that is missing, of another
version, unreadable, or not exactly what this module writes: a crafted index is never trusted
(its schema, then every stored value's type, are checked before anything is read from it). A
torn last line (a writer mid-append) is read afresh by each reader, never stored.

Written safely: built in memory (no journal files), written to a new file created with
``O_EXCL`` (never through a planted link) and renamed over the old one, so two processes
indexing at once each leave a whole index (the last rename wins) and a reader never sees half
of one. Where the run folder is not writable the index lives in memory for that command only.
A run whose records cannot be tabled as one frame (a metric named like an id column) is read
line by line, as is everything when ``EDGEBENCH_NO_INDEX=1``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import sqlite3
import stat
import tempfile
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

from bench.results import table
from bench.results.record import STATUSES, Record
from bench.results.store import MAX_LINE_BYTES, BadLine, Run, parse_line

log = logging.getLogger(__name__)

INDEX = ".records.index"
#: Bump when what is stored changes: older indexes are rebuilt.
VERSION = 3
#: The bytes before the indexed offset whose digest tells an appended file from a rewritten one.
TAIL_BYTES = 4096
#: An index larger than this many times its records file (plus 1 MiB) is not one we wrote.
MAX_RATIO = 8
#: Rows inserted per statement batch.
BATCH = 2000

FIXED = ("line", "offset", "length", "note", "unstable", "samples")
SCHEMA = {
    "meta": "CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY) STRICT",
    "columns": "CREATE TABLE columns (position INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
               "kind TEXT NOT NULL) STRICT",
    "bad": "CREATE TABLE bad (line INTEGER PRIMARY KEY, reason TEXT NOT NULL) STRICT",
    "cells": "CREATE TABLE cells (line INTEGER PRIMARY KEY, offset INTEGER NOT NULL, "
             "length INTEGER NOT NULL, note TEXT NOT NULL, unstable INTEGER NOT NULL, "
             "samples TEXT) STRICT",
    "series": "CREATE TABLE series (name TEXT PRIMARY KEY, data BLOB NOT NULL) STRICT",
}
#: Column kinds: an id column (text or null), a metric's unit or method (text; null: absent),
#: a metric's figure (a number; null: absent), a check (1 passed, 0 failed, -1 not applicable;
#: null: absent). Each with its SQL type and the SQL test of a value of that kind.
KINDS = {"text": ("TEXT", "typeof({c}) IN ('text', 'null')"),
         "label": ("TEXT", "typeof({c}) IN ('text', 'null')"),
         "number": ("ANY", "typeof({c}) IN ('integer', 'real', 'null')"),
         "check": ("INTEGER", "({c} IS NULL OR {c} IN (1, 0, -1))")}
CHECK_CODES = {True: 1, False: 0, None: -1}


class Unindexable(ValueError):
    """Records that do not fit one frame (a column whose kind changes between rows)."""


class NotOurs(ValueError):
    """An index file that is not what this module writes."""


def enabled() -> bool:
    """Whether readers use the index (``EDGEBENCH_NO_INDEX`` unset, empty or 0)."""
    return os.environ.get("EDGEBENCH_NO_INDEX", "") in ("", "0")


def _kind(key: str, value: Any) -> str:
    if key.startswith("check:"):
        if value is None or type(value) is bool:
            return "check"
    elif key in table.ID_COLUMNS:
        if value is None or type(value) is str:
            return "text"
    elif type(value) is str:
        return "label"
    elif type(value) is int or type(value) is float:
        return "number"
    raise Unindexable(f"column {key!r} holds {type(value).__name__} {value!r}"[:200])


class Figure(NamedTuple):
    """A figure as comparing runs reads it: :class:`Metric`'s fields, as a tuple."""

    value: float
    unit: str
    method: str
    low: float | None
    high: float | None


@dataclass
class RunIndex:
    """A run's index, open (in memory) and current."""

    run: Run
    db: sqlite3.Connection
    columns: dict[str, tuple[int, str]]  # name → (position, kind), in the frame's order
    bad: list[BadLine]

    def col(self, name: str) -> str:
        return f"c{self.columns[name][0]}"

    # --- readers --------------------------------------------------------------------------

    def lines(self) -> list[table.Line]:
        """The terminal table's view of every record (:func:`bench.results.table.line`)."""
        if not self.columns:
            return []
        shown = [m for m in table.SHOWN if self.columns.get(m, (0, ""))[1] == "number"]
        checks = [n for n in self.columns if n.startswith("check:")]
        parts = [self.col("cell_id"), self.col("status"), "note", "unstable",
                 self.col("outcome"), self.col("expected_checks")]
        for m in shown:
            parts += [self.col(m), *(self.col(f"{m}__{b}") if self.columns.get(
                f"{m}__{b}", (0, ""))[1] == "number" else "NULL" for b in ("low", "high"))]
        parts += [self.col(c) for c in checks]
        names = [c[len("check:"):] for c in checks]
        out = []
        for row in self.db.execute(f"SELECT {', '.join(parts)} FROM cells ORDER BY line"):
            figures = {m: row[6 + 3 * i: 9 + 3 * i] for i, m in enumerate(shown)
                       if row[6 + 3 * i] is not None}
            at = 6 + 3 * len(shown)
            marks = [(n, None if v == -1 else bool(v)) for n, v in zip(names, row[at:],
                                                                      strict=True)
                     if v is not None]
            out.append(table.Line(row[0], row[1], figures, marks, row[2], bool(row[3]),
                                  row[4] or "ok", tuple(filter(None, (row[5] or "").split(",")))))
        return out

    def records(self, metrics: Collection[str], *, ok: bool = False) -> list[Record]:
        """Every record (``ok``: those whose status is ok) without its provenance and details
        (but for ``details["samples"]``), and with only ``metrics`` of its figures, each a
        :class:`Figure` (a :class:`Metric`'s fields, built ten times faster): what comparing
        runs needs."""
        if not self.columns:
            return []
        ids = ["suite", "run_id", "cell_id", "model", "variant", "device", "runner", "status"]
        kept = [m for m in metrics if m in self.columns and f"{m}__unit" in self.columns
                and self.columns[m][1] == "number"]
        parts = ["samples", *(self.col(c) for c in ids)]
        for m in kept:
            parts += [self.col(m), *(self.col(f"{m}__{b}") if f"{m}__{b}" in self.columns
                                     else "NULL" for b in ("unit", "method", "low", "high"))]
        where = f"WHERE {self.col('status')} = 'ok'" if ok else ""
        out = []
        figure = Figure._make
        at = [(m, 9 + 5 * i, 14 + 5 * i) for i, m in enumerate(kept)]
        for row in self.db.execute(f"SELECT {', '.join(parts)} FROM cells {where} "
                                   "ORDER BY line"):
            found = {m: figure(row[i:j]) for m, i, j in at if row[i] is not None}
            out.append(Record(*row[1:9], metrics=found,
                              details={"samples": row[0]} if row[0] is not None else {}))
        return out

    def figure_rows(self, metrics: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        """Each ok record (in line order) as one plain tuple: its cell id, its raw-samples path
        (None when none), then each of ``metrics``' value and unit (None, None where the record
        lacks it). The cheapest read of a run's figures: no object per record or figure."""
        if not self.columns:
            return iter(())
        parts = [self.col("cell_id"), "samples"]
        for m in metrics:
            found = (m in self.columns and f"{m}__unit" in self.columns
                     and self.columns[m][1] == "number")
            parts += [self.col(m), self.col(f"{m}__unit")] if found else ["NULL", "NULL"]
        return self.db.execute(f"SELECT {', '.join(parts)} FROM cells WHERE "
                               f"{self.col('status')} = 'ok' ORDER BY line")

    def find(self, cell_id: str, *, last: bool = False) -> Record | None:
        """The full record of a cell (read from ``records.jsonl`` at its offset): the first
        with that id, or the last."""
        if "cell_id" not in self.columns:
            return None
        order = "DESC" if last else "ASC"
        found = self.db.execute(f"SELECT offset, length FROM cells WHERE {self.col('cell_id')} "
                                f"= ? ORDER BY line {order} LIMIT 1", (cell_id,)).fetchone()
        return None if found is None else next(self._read([found]), None)

    def full_records(self) -> Iterator[Record]:
        """Every record in full, one at a time (read at their offsets: memory stays flat)."""
        yield from self._read(self.db.execute("SELECT offset, length FROM cells ORDER BY line"))

    def _read(self, spans: Iterable[tuple[int, int]]) -> Iterator[Record]:
        with self.run.records_path.open("rb") as f:
            for offset, length in spans:
                f.seek(offset)
                try:
                    yield parse_line(f.read(length))
                except ValueError as e:  # changed since it was indexed: it is rebuilt next time
                    log.warning("%s: changed while read (%s)", self.run.records_path, e)


# --- opening: load, check, bring up to date ---------------------------------------------------

def open_run(run: Run) -> RunIndex | None:
    """The run's index, current with its records (built or extended as needed; written back
    when the folder allows); None when indexes are off or the run's records do not fit one
    (read them with :meth:`Run.read` then)."""
    if not enabled():
        return None
    try:
        return _open(run)
    except Unindexable as e:
        log.info("%s: read line by line (%s)", run.records_path, e)
        return None
    except sqlite3.Error as e:  # a limit (too many columns) or a fault of our own making
        log.warning("%s: read line by line (index: %s)", run.records_path, e)
        return None


def _open(run: Run) -> RunIndex:
    path = run.path / INDEX
    try:
        st = os.stat(run.records_path)
    except FileNotFoundError:
        db = _create()
        return RunIndex(run, db, {}, [])
    db, state = _load(path, st.st_size)
    start = None if db is None else _resume_at(run.records_path, st, state)
    rebuilt = start is None
    if rebuilt:
        if db is not None:
            db.close()
        db, start = _create(), (0, 0)
    columns = _columns(db)
    offset, line, changed, torn = _index_lines(db, run.records_path, columns, *start)
    if changed or rebuilt:
        _set_meta(db, run.records_path, os.stat(run.records_path), offset, line)
        _store_series(db, columns)
        _write(path, db)
    for raw in torn:  # the torn last line: this reader's view only
        _add_line(db, columns, raw, line + 1, offset, len(raw or b""), torn=True)
    bad = [BadLine(run.records_path, n, reason)
           for n, reason in db.execute("SELECT line, reason FROM bad ORDER BY line")]
    for b in bad:
        log.warning("skipping a stored record: %s", b)
    return RunIndex(run, db, columns, bad)


def _create() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    for sql in SCHEMA.values():
        db.execute(sql)
    return db


def _read_index(path: Path, records_size: int) -> bytes | None:
    """The index file's bytes; None when missing, not a regular file (a link, a FIFO) or
    larger than any index of these records."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_RATIO * records_size + (1 << 20):
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(st.st_size + 1)
    finally:
        os.close(fd)


def _load(path: Path, records_size: int) -> tuple[sqlite3.Connection | None, dict | None]:
    """The index at ``path`` in memory and its state (meta), or (None, None) when there is
    none or it is not exactly what this module writes (it is rebuilt)."""
    data = _read_index(path, records_size)
    if data is None:
        return None, None
    if not data.startswith(b"SQLite format 3\0"):
        log.info("%s: rebuilding the index (not a SQLite database)", path)
        return None, None
    db = sqlite3.connect(":memory:", isolation_level=None)
    try:
        db.deserialize(data)
        del data
        state = _check(db)
    except (sqlite3.Error, NotOurs, OverflowError, ValueError) as e:
        log.info("%s: rebuilding the index (%s)", path, e)
        db.close()
        return None, None
    return db, state


def _check(db: sqlite3.Connection) -> dict[str, Any]:
    """The index's meta after checking that every part of it is what :func:`_create` and
    :func:`_index_lines` write; :class:`NotOurs` otherwise. (Reading every cell for the type
    check also finds a damaged page: SQLite raises.)"""
    objects = db.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
    expected = {("table", n) for n in SCHEMA} | {("index", f"sqlite_autoindex_{n}_1")
                                                 for n in ("meta", "columns", "series")}
    if {(t, n) for t, n, _ in objects} != expected or len(objects) != len(expected):
        raise NotOurs("unexpected tables")
    sql = {n: s for t, n, s in objects if t == "table"}
    if any(sql[n] != SCHEMA[n] for n in ("meta", "columns", "bad", "series")):
        raise NotOurs("unexpected schema")
    if not sql["cells"].endswith(" STRICT"):
        raise NotOurs("unexpected schema")
    columns = db.execute("SELECT position, name, kind FROM columns ORDER BY position").fetchall()
    if any(type(p) is not int or p != i or type(n) is not str or k not in KINDS
           for i, (p, n, k) in enumerate(columns)):
        raise NotOurs("unexpected column list")
    info = [(name, kind) for _, name, kind, *_ in db.execute("PRAGMA table_info(cells)")]
    want = [(n, t) for n, t in zip(FIXED, ("INTEGER", "INTEGER", "INTEGER", "TEXT", "INTEGER",
                                           "TEXT"), strict=True)]
    want += [(f"c{p}", KINDS[k][0]) for p, _, k in columns]
    if info != want:
        raise NotOurs("unexpected cell columns")
    names = {n: (p, k) for p, n, k in columns}
    tests = ["typeof(offset) = 'integer'", "typeof(length) = 'integer'", "typeof(note) = 'text'",
             "unstable IN (0, 1)", "typeof(samples) IN ('text', 'null')"]
    tests += [KINDS[k][1].format(c=f"c{p}") for p, _, k in columns]
    if columns:
        if any(names.get(n, (0, ""))[1] != "text" for n in table.ID_COLUMNS):
            raise NotOurs("missing id columns")
        tests += [f"typeof(c{names[n][0]}) = 'text'" for n in table.ID_COLUMNS
                  if n in table.REQUIRED_IDS]
        tests.append(f"c{names['status'][0]} IN ({', '.join(repr(s) for s in STATUSES)})")
    elif db.execute("SELECT 1 FROM cells LIMIT 1").fetchone():
        raise NotOurs("cells without columns")
    if db.execute(f"SELECT 1 FROM cells WHERE NOT ({' AND '.join(tests)}) LIMIT 1").fetchone():
        raise NotOurs("a value of the wrong type")
    if db.execute("SELECT 1 FROM bad WHERE typeof(reason) != 'text' LIMIT 1").fetchone():
        raise NotOurs("a value of the wrong type")
    state = dict(db.execute("SELECT key, value FROM meta").fetchall())
    if set(state) != {"version", "device", "inode", "offset", "mtime", "lines", "tail"} or any(
            type(state[k]) is not int for k in ("version", "device", "inode", "offset", "mtime",
                                                "lines")) or type(state["tail"]) is not str:
        raise NotOurs("unexpected meta")
    if state["version"] != VERSION:
        raise NotOurs(f"version {state['version']}, not {VERSION}")
    return state


def _tail_digest(path: Path, offset: int) -> str:
    with path.open("rb") as f:
        f.seek(max(0, offset - TAIL_BYTES))
        return hashlib.sha256(f.read(min(offset, TAIL_BYTES))).hexdigest()


def _resume_at(path: Path, st: os.stat_result, state: dict[str, Any]) -> tuple[int, int] | None:
    """Where to go on indexing (offset, last line number), or None to rebuild: the same file,
    not shorter, its indexed part unchanged (same mtime when it did not grow, the same bytes
    before the offset when it did)."""
    offset = state["offset"]
    if (state["device"], state["inode"]) != (st.st_dev, st.st_ino) or st.st_size < offset:
        return None
    if st.st_size == offset and st.st_mtime_ns != state["mtime"]:
        return None
    if _tail_digest(path, offset) != state["tail"]:
        return None
    return offset, state["lines"]


def _set_meta(db: sqlite3.Connection, path: Path, st: os.stat_result, offset: int,
              lines: int) -> None:
    db.execute("DELETE FROM meta")
    db.executemany("INSERT INTO meta VALUES (?, ?)", [
        ("version", VERSION), ("device", st.st_dev), ("inode", st.st_ino), ("offset", offset),
        ("mtime", st.st_mtime_ns), ("lines", lines), ("tail", _tail_digest(path, offset))])


def _write(path: Path, db: sqlite3.Connection) -> None:
    """Replace the index file with ``db``: a new file (``O_EXCL``: never a planted link's
    target), then a rename over the old one. Not writable or no room: the index stays in
    memory."""
    data = db.serialize()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{INDEX}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        log.debug("%s: index kept in memory (%s)", path, e)
        return
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)  # a buffered file writes all of it, or raises
        os.replace(tmp, path)
    except OSError as e:
        log.debug("%s: index kept in memory (%s)", path, e)
        Path(tmp).unlink(missing_ok=True)


def _columns(db: sqlite3.Connection) -> dict[str, tuple[int, str]]:
    return {n: (p, k) for p, n, k in
            db.execute("SELECT position, name, kind FROM columns ORDER BY position")}


# --- indexing lines ---------------------------------------------------------------------------

@dataclass
class _Batch:
    rows: list[list[Any]]
    width: int = 0


def _flush(db: sqlite3.Connection, batch: _Batch, columns: dict[str, tuple[int, str]]) -> None:
    if not batch.rows:
        return
    width = len(FIXED) + len(columns)
    for row in batch.rows:
        row.extend([None] * (width - len(row)))
    db.executemany(f"INSERT INTO cells VALUES ({', '.join('?' * width)})", batch.rows)
    batch.rows.clear()


def _add_column(db: sqlite3.Connection, columns: dict[str, tuple[int, str]], name: str,
                kind: str) -> int:
    position = len(columns)
    db.execute(f"ALTER TABLE cells ADD COLUMN c{position} {KINDS[kind][0]}")
    db.execute("INSERT INTO columns VALUES (?, ?, ?)", (position, name, kind))
    columns[name] = (position, kind)
    return position


def _cell_row(record: Record, line: int, offset: int, length: int,
              columns: dict[str, tuple[int, str]], new: list[tuple[str, str]]) -> list[Any]:
    """The ``cells`` row of a record; columns it needs that the index lacks go into ``new``
    (the caller adds them and calls again)."""
    samples = (record.details or {}).get("samples")
    row: list[Any] = [line, offset, length, table.note(record),
                      int(bool((record.details or {}).get("warnings"))),
                      samples if isinstance(samples, str) else None]
    values = [None] * len(columns)
    for key, value in table.row(record).items():
        kind = _kind(key, value)
        known = columns.get(key)
        if known is None:
            new.append((key, kind))
            continue
        if known[1] != kind:
            raise Unindexable(f"column {key!r} is {known[1]} in one row, {kind} in another")
        values[known[0]] = CHECK_CODES[value] if kind == "check" else value
    return row + values


def _add_line(db: sqlite3.Connection, columns: dict[str, tuple[int, str]], raw: bytes | None,
              line: int, offset: int, length: int, *, torn: bool = False,
              batch: _Batch | None = None) -> None:
    """Index one line (``raw`` None: longer than the limit), as :meth:`Run.read` reads it."""
    if raw is not None and not raw.strip():
        return
    try:
        if raw is None:
            raise ValueError(f"line longer than {MAX_LINE_BYTES} bytes")
        record = parse_line(raw)
    except ValueError as e:
        why = str(e)[:300]
        if torn and raw is not None:
            why = f"torn final line (a killed run?): {why}"
        db.execute("INSERT INTO bad VALUES (?, ?)", (line, why))
        return
    new: list[tuple[str, str]] = []
    row = _cell_row(record, line, offset, length, columns, new)
    if new:
        if batch is not None:
            _flush(db, batch, columns)
        for name, kind in new:
            if name not in columns:
                _add_column(db, columns, name, kind)
        row = _cell_row(record, line, offset, length, columns, [])
    own = batch is None
    batch = batch or _Batch([])
    batch.rows.append(row)
    if own or len(batch.rows) >= BATCH:
        _flush(db, batch, columns)


def _index_lines(db: sqlite3.Connection, path: Path, columns: dict[str, tuple[int, str]],
                 offset: int, line: int) -> tuple[int, int, bool, list[bytes | None]]:
    """Index the whole lines from ``offset`` on (``line`` lines before it): the new offset
    and line count, whether any line was added, and the torn last line (no newline yet: as a
    one-item list, None when it is already over the length limit; empty when none)."""
    changed, torn = False, []
    batch = _Batch([])
    db.execute("BEGIN")
    try:
        with path.open("rb") as f:
            f.seek(offset)
            while raw := f.readline(MAX_LINE_BYTES + 1):
                size = len(raw)
                if size > MAX_LINE_BYTES:  # skip the rest of the line, as Run.read does
                    while raw and not raw.endswith(b"\n"):
                        raw = f.readline(1 << 20)
                        size += len(raw)
                    if not raw.endswith(b"\n"):
                        torn = [None]
                        break
                    _add_line(db, columns, None, line + 1, offset, size, batch=batch)
                elif not raw.endswith(b"\n"):
                    torn = [raw]
                    break
                else:
                    _add_line(db, columns, raw, line + 1, offset, size, batch=batch)
                offset, line, changed = offset + size, line + 1, True
        _flush(db, batch, columns)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return offset, line, changed, torn


# --- whole stores: frames and CSV -------------------------------------------------------------

def open_runs(runs: Iterable[Run]) -> list[RunIndex] | None:
    """The indexes of ``runs``; None when any run has none (read them all line by line)."""
    out = []
    for run in runs:
        index = open_run(run)
        if index is None:
            return None
        out.append(index)
    return out


def _union(indexes: list[RunIndex]) -> dict[str, str] | None:
    """The frame's columns over several runs, in order of first appearance, with their kinds;
    None when a column's kind differs between runs."""
    out: dict[str, str] = {}
    for index in indexes:
        for name, (_, kind) in index.columns.items():
            if out.setdefault(name, kind) != kind:
                return None
    return out


def frame(runs: list[Run]) -> Any:
    """:func:`bench.results.table.frame` of every record of ``runs``, from their indexes'
    stored columns (no row is built: each column is one array or one JSON list)."""
    import pandas as pd

    indexes = open_runs(runs)
    names = None if indexes is None else _union(indexes)
    if indexes is None or names is None:
        return table.frame([r for run in runs for r in run.records()])
    parts: list[tuple[int, dict[str, Any]]] = []
    for i, index in enumerate(indexes):
        try:
            parts.append(_series(index))
        except (ValueError, TypeError, RecursionError, sqlite3.Error) as e:  # crafted: rebuild
            log.info("%s: rebuilding the index (%s)", index.run.path / INDEX, e)
            (index.run.path / INDEX).unlink(missing_ok=True)
            indexes[i] = open_run(index.run) or index
            parts.append(_series(indexes[i]))
    if not any(n for n, _ in parts):
        return pd.DataFrame()
    columns = {}  # each list of text becomes its column before the next is built
    for name, kind in names.items():
        columns[name] = pd.Series(_joined(kind, [(n, got.pop(name, None)) for n, got in parts]))
    return pd.DataFrame(columns)


# --- stored columns (``series``): the frame without building rows ----------------------------

#: A check's code where the record has no such check.
ABSENT = -2


def _column(kind: str, values: list[Any]) -> Any:
    """One column's values (in line order) as stored: numbers as int64 (every row an integer)
    or float64 (NaN: absent), checks as int8 codes, text as a list."""
    import numpy as np

    if kind == "number":
        if all(type(v) is int for v in values):
            return np.array(values, dtype=np.int64)
        return np.array([float("nan") if v is None else v for v in values], dtype=np.float64)
    if kind == "check":
        return np.array([ABSENT if v is None else v for v in values], dtype=np.int8)
    return list(values)


def _encode(kind: str, column: Any) -> bytes:
    if kind in ("number", "check"):
        return column.dtype.char.encode() + column.tobytes()
    return b"j" + json.dumps(column, ensure_ascii=False).encode()


def _decode(kind: str, data: bytes, n: int) -> Any:
    """A stored column; ValueError when it is not one of ``n`` values of ``kind``."""
    import numpy as np

    tag, body = data[:1], data[1:]
    if kind == "number" and tag in (b"l", b"q", b"d"):
        column = np.frombuffer(body, dtype=np.int64 if tag != b"d" else np.float64)
    elif kind == "check" and tag == b"b":
        column = np.frombuffer(body, dtype=np.int8)
        if not np.isin(column, (1, 0, -1, ABSENT)).all():
            raise ValueError("a check code out of range")
    elif kind in ("text", "label") and tag == b"j":
        column = json.loads(body)
        if type(column) is not list or not all(v is None or type(v) is str for v in column):
            raise ValueError("a text column that is not a list of strings")
    else:
        raise ValueError(f"a {kind} column stored as {tag!r}")
    if len(column) != n:
        raise ValueError(f"a column of {len(column)} values, not {n}")
    return column


def _store_series(db: sqlite3.Connection, columns: dict[str, tuple[int, str]]) -> None:
    """Store every column of the indexed cells (line order) for :func:`frame`."""
    db.execute("DELETE FROM series")
    if not columns:
        return
    for name, (position, kind) in columns.items():  # one column in memory at a time
        values = [v for (v,) in db.execute(f"SELECT c{position} FROM cells ORDER BY line")]
        db.execute("INSERT INTO series VALUES (?, ?)", (name, _encode(kind, _column(kind,
                                                                                    values))))


def _series(index: RunIndex) -> tuple[int, dict[str, Any]]:
    """The run's row count and its columns by name: the stored ones, plus the torn last line
    (indexed by this reader only) appended."""
    lines = index.db.execute("SELECT value FROM meta WHERE key = 'lines'").fetchone()
    stored = index.db.execute("SELECT count(*) FROM cells WHERE line <= ?",
                              (lines[0] if lines else 0,)).fetchone()[0]
    got = {name: _decode(index.columns[name][1], data, stored) for name, data in
           index.db.execute("SELECT name, data FROM series") if name in index.columns}
    if set(got) != set(index.columns):
        raise ValueError("stored columns missing")
    extra = index.db.execute(
        f"SELECT {', '.join(f'c{p}' for p, _ in index.columns.values()) or 'NULL'} FROM cells "
        "WHERE line > ? ORDER BY line", (lines[0] if lines else 0,)).fetchall()
    if extra:
        import numpy as np

        for (name, (_, kind)), values in zip(index.columns.items(), zip(*extra, strict=True),
                                             strict=True):
            more = _column(kind, list(values))
            got[name] = (got[name] + more if kind in ("text", "label") else
                         np.concatenate([got[name], more]))
    return stored + len(extra), got


def _joined(kind: str, pieces: list[tuple[int, Any]]) -> Any:
    """One frame column over several runs (a run without it: absent in its rows), with the
    dtype pandas infers for the same values given row by row."""
    import numpy as np

    if kind in ("text", "label"):
        out: list[Any] = []
        for n, piece in pieces:
            out += [None] * n if piece is None else piece
        return out
    if kind == "number":
        if all(p is not None and p.dtype == np.int64 for n, p in pieces if n):
            return np.concatenate([p for n, p in pieces if n])
        return np.concatenate([np.full(n, np.nan) if p is None else p.astype(np.float64)
                               for n, p in pieces])
    codes = np.concatenate([np.full(n, ABSENT, np.int8) if p is None else p for n, p in pieces])
    known = np.isin(codes, (0, 1))
    if known.all():
        return codes == 1
    if not known.any():  # only None and NaN: pandas makes floats
        return np.full(len(codes), np.nan)
    values = np.full(len(codes), np.nan, dtype=object)
    values[codes == 1], values[codes == 0], values[codes == -1] = True, False, None
    return values


def write_csv(runs: list[Run], out: IO[str]) -> None:
    """``frame(runs).to_csv(out, index=False)``, streamed from the indexes (the same text:
    a figure prints as an integer only where every row has it as one, as pandas would)."""
    indexes = open_runs(runs)
    names = None if indexes is None else _union(indexes)
    if indexes is None or names is None or not any(i.columns for i in indexes):
        table.frame([r for run in runs for r in run.records()]).to_csv(out, index=False)
        return
    whole = [n for n, k in names.items() if k == "number"]  # integers in every row
    for index in indexes:
        total = index.db.execute("SELECT count(*) FROM cells").fetchone()[0]
        if not total:
            continue
        whole = [n for n in whole if n in index.columns]
        counts = [f"sum(typeof({index.col(n)}) = 'integer')" for n in whole]
        ints = index.db.execute(f"SELECT {', '.join(counts) or '0'} FROM cells").fetchone()
        whole = [n for n, k in zip(whole, ints, strict=False) if k == total]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for index in indexes:
        if not index.columns:
            continue
        parts = []
        for n, kind in names.items():
            if n not in index.columns:
                parts.append("NULL")
                continue
            c = index.col(n)
            if kind == "check":
                parts.append(f"CASE {c} WHEN 1 THEN 'True' WHEN 0 THEN 'False' END")
            elif kind == "number" and n not in whole:
                parts.append(f"CAST({c} AS REAL)")
            else:
                parts.append(c)
        writer.writerows(index.db.execute(f"SELECT {', '.join(parts)} FROM cells ORDER BY line"))
