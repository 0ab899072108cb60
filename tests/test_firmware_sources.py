"""The pinned third-party sources: the bundle's archives match their pins (archive SHA-256 and
file digest), the rules a download keeps files by reproduce the bundle, a tampered bundle is
refused, and the unpacked tree is laid out as TFLite Micro's download scripts would."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from bench.firmware import FirmwareError
from bench.firmware.sources import DOWNLOADS, PINS, fetch, sources_dir, tree_digest
from tests.conftest import ROOT

THIRD_PARTY = ROOT.parent / "shared" / "third_party"


@pytest.fixture
def bundle() -> Path:
    if not THIRD_PARTY.is_dir():
        pytest.skip(f"third-party sources not found in {THIRD_PARTY}")
    return THIRD_PARTY


@pytest.mark.parametrize("pin", PINS, ids=lambda p: p.name)
def test_each_archive_matches_its_pin_and_its_download_rules(pin: object, bundle: Path,
                                                             tmp_path: Path) -> None:
    root = fetch(pin, tmp_path, bundle)  # checks the archive's SHA-256 and the file digest
    assert tree_digest(root) == pin.tree
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files
    if pin.rename:  # the files a download keeps are exactly these, under these names
        assert sorted(bundled for _, bundled in pin.rename) == files
    else:  # every file of the bundle is one an upstream download keeps, at the same path
        assert [f for f in files if pin.kept(f) != f] == []
    assert pin.kept("tensorflow/lite/micro/examples/hello_world/x.cc") is None


def test_a_tampered_archive_is_refused(bundle: Path, tmp_path: Path) -> None:
    fake = tmp_path / "bundle"
    fake.mkdir()
    pin = next(p for p in PINS if p.name == "ruy")
    with tarfile.open(fake / "ruy.tar.gz", "w:gz") as tar:
        tar.add(bundle / "SHA256SUMS", arcname="ruy/LICENSE")
    with pytest.raises(FirmwareError, match="differs from the pinned"):
        fetch(pin, tmp_path / "out", fake)
    (fake / "ruy.tar.gz").unlink()
    with pytest.raises(FirmwareError, match="is missing"):
        fetch(pin, tmp_path / "out", fake)


def test_the_sources_are_laid_out_for_tflm(bundle: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEBENCH_THIRD_PARTY", str(bundle))
    monkeypatch.setenv("EDGEBENCH_FIRMWARE_CACHE", str(tmp_path / "fw"))
    root = sources_dir()
    downloads = root / "tflite-micro" / DOWNLOADS
    assert sorted(p.name for p in downloads.iterdir()) == [
        "cmsis", "cmsis_nn", "flatbuffers", "gemmlowp", "kissfft", "pigweed", "ruy"]
    assert (downloads / "cmsis" / "Cortex_DFP" / "Device" / "ARMCM4").is_dir()
    assert not list((downloads / "flatbuffers").rglob("BUILD*"))  # TFLM's fix-up
    assert "_KISS_FFT_GUTS_H" in (downloads / "kissfft" / "_kiss_fft_guts.h").read_text()  # patched
    assert (root / "api" / "internally_implemented.cpp").is_file()
    assert sources_dir() == root  # unpacked once
    shutil.rmtree(root / "api")
    assert sources_dir() == root  # the completion marker, not the content, decides
