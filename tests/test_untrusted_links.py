"""Links planted in a result store or cache are never written through: one test per file kind
the store writes (records, manifest, lock, raw samples, run and suite folders), the cache's
files and folders, and the roots (followed when the user named them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.artifacts.cache import Cache
from bench.files import LinkRefused
from bench.results import runlock, samples
from bench.results.metrics import Metric
from bench.results.record import Record
from bench.results.store import Store
from tests.conftest import ROOT

SECRET = b"precious\n"


def record(cell: str) -> Record:
    return Record(suite="s", run_id="r", cell_id=cell, model="m", variant="v", device="d",
                  runner="litert", status="ok", metrics={"model_size": Metric(1.0, "B",
                                                                              "measured")})


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """A file someone would like edgebench to overwrite (say, ~/.bashrc)."""
    path = tmp_path / "target"
    path.write_bytes(SECRET)
    return path


def _closed_run(tmp_path: Path):  # noqa: ANN202 - a Run whose lock this process gave back
    run = Store(tmp_path / "results").create("s", {})
    run.append(record("a"))
    run.release()
    return run


def _plant(link: Path, target: Path) -> None:
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(target)


def test_a_linked_records_file_is_not_appended_through(tmp_path: Path, target: Path) -> None:
    run = _closed_run(tmp_path)
    _plant(run.records_path, target)
    with pytest.raises(LinkRefused, match="records.jsonl is a symbolic link"):
        run.append(record("b"))
    assert target.read_bytes() == SECRET


def test_a_linked_lock_file_is_not_truncated_on_resume(tmp_path: Path, target: Path) -> None:
    run = _closed_run(tmp_path)
    _plant(run.path / runlock.LOCK, target)
    with pytest.raises(LinkRefused, match="run.lock is a symbolic link"):
        run.repair_tail()
    assert target.read_bytes() == SECRET


def test_resume_through_the_cli_refuses_a_linked_lock(tmp_path: Path, target: Path) -> None:
    """The reported attack, end to end: ``edgebench run --resume`` with ``run.lock`` a link."""
    run = _closed_run(tmp_path)
    _plant(run.path / runlock.LOCK, target)
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nmodels: [{id: m, builder: har_mlp}]\ndevices: [host-litert]\n")
    out = subprocess.run([sys.executable, "-m", "bench", "run", str(suite), "--resume", "-q",
                          "--results", str(tmp_path / "results")], capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 2, out.stderr
    assert "run.lock is a symbolic link" in out.stderr and "Traceback" not in out.stderr
    assert target.read_bytes() == SECRET


def test_a_linked_manifest_is_replaced_not_followed(tmp_path: Path, target: Path) -> None:
    store = Store(tmp_path / "results")
    run = store.create("s", {}, run_id="20260101T000000Z-aaaa")
    run.release()
    _plant(run.path / "run.json", target)
    from bench import files

    files.write_atomic(run.path / "run.json", b"{}", store.root)
    assert target.read_bytes() == SECRET and not (run.path / "run.json").is_symlink()


def test_raw_samples_are_not_written_through_links(tmp_path: Path, target: Path) -> None:
    run = _closed_run(tmp_path)
    kept = samples.Samples([np.arange(5, dtype=np.int64)], [5])
    folder = run.path / samples.FOLDER
    folder.mkdir()
    _plant(folder / samples.file_name("m/v@d"), target)  # the file: replaced, not followed
    samples.save(run.path, "m/v@d", kept)
    assert target.read_bytes() == SECRET
    assert samples.load(run.path, f"{samples.FOLDER}/{samples.file_name('m/v@d')}").counts == [5]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (folder / samples.file_name("m/v@d")).unlink()
    folder.rmdir()
    _plant(folder, elsewhere)  # the folder: refused
    with pytest.raises(LinkRefused, match="samples is a symbolic link"):
        samples.save(run.path, "m/v@d", kept)
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("level", ["suite", "run"])
def test_a_linked_run_or_suite_folder_is_refused(tmp_path: Path, level: str) -> None:
    store = Store(tmp_path / "results")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if level == "suite":
        store.root.mkdir()
        _plant(store.root / "s", elsewhere)
        with pytest.raises(LinkRefused, match="is a symbolic link"):
            store.create("s", {})
    else:
        (store.root / "s").mkdir(parents=True)
        _plant(store.root / "s" / "20260101T000000Z-aaaa", elsewhere)
        with pytest.raises(LinkRefused, match="is a symbolic link"):
            store.create("s", {}, run_id="20260101T000000Z-aaaa")
    assert list(elsewhere.iterdir()) == []


def test_a_linked_root_is_followed_only_when_the_user_named_it(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "results"
    link.symlink_to(real)
    with pytest.raises(LinkRefused, match="pass --results"):
        Store(link, root_given=False).create("s", {})
    run = Store(link, root_given=True).create("s", {})
    run.append(record("a"))
    assert len(list(real.glob("s/*/records.jsonl"))) == 1


def test_cache_files_and_folders(tmp_path: Path, target: Path) -> None:
    cache = Cache(tmp_path / "cache")
    path = cache.evaluation("k")
    path.parent.mkdir(parents=True)
    _plant(path, target)
    cache.write_json(path, {"metrics": {}})  # the file: replaced, not followed
    assert target.read_bytes() == SECRET and json.loads(path.read_text()) == {"metrics": {}}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _plant(cache.root / "artifacts", elsewhere)  # a folder: refused
    with pytest.raises(LinkRefused, match="artifacts is a symbolic link"):
        cache.write(cache.artifact("k"), b"TFL3")
    assert list(elsewhere.iterdir()) == []
    linked_root = tmp_path / "cache-link"  # the root the user named: followed
    linked_root.symlink_to(cache.root)
    Cache(linked_root).write(Cache(linked_root).dataset("d"), b"npz")
    assert (cache.root / "datasets" / "d.npz").read_bytes() == b"npz"


def test_a_planted_temporary_name_is_not_followed(tmp_path: Path, target: Path) -> None:
    cache = Cache(tmp_path / "cache")
    path = cache.artifact("k")
    path.parent.mkdir(parents=True)
    _plant(path.with_name(f".{path.name}.{os.getpid()}.tmp"), target)
    with pytest.raises(LinkRefused):
        cache.write(path, b"TFL3")
    assert target.read_bytes() == SECRET
