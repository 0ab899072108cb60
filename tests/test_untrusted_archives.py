"""``.keras`` zip archives are judged by their directory before anything inflates an entry: too
many entries, too much uncompressed data, an oversized ``config.json`` or an entry compressed
like a zip bomb are refused with the file, the entry and the bound."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from bench.models import archive
from bench.models.archive import ArchiveError, check_archive
from bench.models.train import ModelFileError, load_keras_file
from bench.results.store import Store
from bench.run.build import judge_model_file
from tests.conftest import ROOT


def config_bomb(path: Path, mib: int) -> Path:
    """A .keras whose config.json is ``mib`` MiB of spaces inside a JSON string (deflated)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("metadata.json", "{}")
        with z.open("config.json", "w", force_zip64=True) as f:
            f.write(b'{"class_name": "')
            chunk = b" " * (1 << 20)
            for _ in range(mib):
                f.write(chunk)
            f.write(b'"}')
        z.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n")
    return path


def test_a_config_that_inflates_far_is_refused_before_reading(tmp_path: Path) -> None:
    path = config_bomb(tmp_path / "bomb.keras", 128)
    assert path.stat().st_size < 1 << 20
    with pytest.raises(ArchiveError, match=r"config.json inflates to 128 MiB; an architecture "
                                           r"of up to 32 MiB"):
        check_archive(path)
    with pytest.raises(ValueError, match=str(path)):
        judge_model_file(path)  # the build's judge, before hashing or copying
    with pytest.raises(ModelFileError, match="config.json inflates"):
        load_keras_file(path)  # and the loader, before the code check reads config.json


def test_an_entry_compressed_like_a_bomb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("config.json", "{}")
        z.writestr("model.weights.h5", b"\0" * (64 << 20))
    with pytest.raises(ArchiveError, match=r"entry 'model.weights.h5' inflates [\d,]+× \(to "
                                           r"64 MiB\); up to 200× is accepted"):
        check_archive(path)


def test_too_many_entries(tmp_path: Path) -> None:
    path = tmp_path / "many.keras"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(archive.MAX_ENTRIES + 1):
            z.writestr(f"assets/{i}", b"")
    with pytest.raises(ArchiveError, match="holds 1,001 zip entries"):
        check_archive(path)


def test_declared_sizes_are_what_is_judged(tmp_path: Path) -> None:
    """An archive whose directory declares more than its bytes hold (a crafted file): the
    declared total is refused; Python's zip reader would stop at the declared size anyway."""
    path = tmp_path / "lying.keras"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(3):
            z.writestr(f"part{i}", b"x")
        for info in z.infolist():  # written into the central directory at close
            info.file_size = info.compress_size = 400 << 20
    with pytest.raises(ArchiveError, match=r"inflates to 1.2 GiB; .keras archives of up to "
                                           r"1 GiB"):
        check_archive(path)


def test_a_real_model_passes(tmp_path: Path) -> None:
    import os

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras as keras

    model = keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(300),
                              keras.layers.Dense(3)])
    model.save(tmp_path / "real.keras")
    check_archive(tmp_path / "real.keras")


def test_a_run_with_the_reported_1_gib_bomb_stays_small(tmp_path: Path) -> None:
    """The reported probe end to end: a 1 MB .keras whose config.json inflates to 1 GiB fails
    its cell naming the bound, and the run's peak memory stays far below the 1 GiB."""
    bomb = config_bomb(tmp_path / "bomb.keras", 1024)
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({"name": "bomb", "models": [{"id": "m", "path": str(bomb)}],
                                     "devices": ["host-litert"]}))
    # run in a fresh parent whose children's peak memory is this run's alone
    measure = ("import resource, subprocess, sys; "
               "done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "bench", "run",
                          str(suite), "-q", "--results", str(tmp_path / "results")],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    status, peak_kib = map(int, out.stdout.split())
    assert status == 1, out.stderr  # the run ends; its one cell failed
    assert peak_kib / 1024 < 800, peak_kib  # the 1 GiB was never inflated
    (record,) = Store(tmp_path / "results").latest().records()
    assert record.status == "failed"
    assert f"model file {bomb}: config.json inflates to 1,024 MiB" in record.error["message"]
