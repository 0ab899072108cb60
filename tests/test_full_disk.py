"""A full disk, for real: a size-limited tmpfs holds the result store (mounting needs root; the
tests skip without it). A write that does not fit ends the run with one line naming the folder
(exit status 3), no record is written in part, and the run resumes once there is room."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bench.files import DiskFull
from bench.results.metrics import Metric
from bench.results.record import Record
from bench.results.store import Store
from bench.run.session import Session
from bench.suite.spec import load_suite
from tests.conftest import ROOT

DEVICES = ROOT / "devices"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted for the test (removed after it)."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs",
                           str(mount)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte; the filler file (remove it to make room)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def record(cell: str) -> Record:
    return Record(suite="s", run_id="r", cell_id=cell, model="m", variant="v", device="d",
                  runner="litert", status="ok", metrics={"model_size": Metric(1.0, "B",
                                                                              "measured")},
                  details={"pad": "x" * 20_000})


def test_an_append_that_does_not_fit_leaves_no_partial_record(small_disk: Path) -> None:
    run = Store(small_disk / "results").create("s", {})
    run.append(record("a"))
    before = run.records_path.read_bytes()
    filler = fill(small_disk)
    with pytest.raises(DiskFull) as caught:
        run.append(record("b"))
    assert str(run.path) in str(caught.value) and "KiB" in str(caught.value)
    assert run.records_path.read_bytes() == before  # nothing of "b" stayed behind
    filler.unlink()
    run.append(record("b"))
    assert [r.cell_id for r in run.records()] == ["a", "b"]


def _suite(tmp_path: Path, tiny_tflite: Path) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({
        "name": "full", "models": [{"id": "tiny", "path": str(tiny_tflite)}],
        "variants": [{"id": "fp32"}, {"id": "copy"}], "devices": ["host-litert"],
        "settings": {"repeats": 3, "warmup": 1, "processes": 1}}))
    return path


def test_a_run_stopped_by_a_full_disk_resumes(small_disk: Path, tmp_path: Path,
                                              tiny_tflite: Path) -> None:
    suite = load_suite(_suite(tmp_path, tiny_tflite))
    store = Store(small_disk / "results")
    filled: list[Path] = []

    def disk_fills(rec: Record) -> None:  # the disk fills after the first record
        if not filled:
            filled.append(fill(small_disk))

    session = Session(suite, store, devices_dirs=[DEVICES], on_record=disk_fills)
    with pytest.raises(DiskFull):
        session.run()
    run = store.latest("full")
    read = run.read()
    assert [r.cell_id for r in read.records] == ["tiny/fp32@host-litert"]
    assert read.bad_lines == []  # the store is intact
    filled[0].unlink()
    run.release()
    resumed = Session(suite, store, devices_dirs=[DEVICES]).run(resume=True)
    assert resumed == run
    assert sorted(r.cell_id for r in run.records()) == ["tiny/copy@host-litert",
                                                        "tiny/fp32@host-litert"]
    assert all(r.status == "ok" for r in run.records())


def test_the_cli_says_it_in_one_line_with_status_3(small_disk: Path, tmp_path: Path,
                                                   tiny_tflite: Path) -> None:
    suite = _suite(tmp_path, tiny_tflite)
    fill(small_disk)
    out = subprocess.run([sys.executable, "-m", "bench", "run", str(suite), "-q",
                          "--results", str(small_disk / "results")], capture_output=True,
                         text=True, cwd=ROOT, timeout=600,
                         env={**os.environ, "EDGEBENCH_CACHE": str(tmp_path / "cache")})
    assert out.returncode == 3, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert lines[0].startswith("error: no space left on the file system of "
                               f"{small_disk / 'results'}")
    assert "--resume" in lines[0]
