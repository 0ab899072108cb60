"""The pinned third-party sources of the firmware, laid out as TFLite Micro's build expects.

Each component is pinned by its upstream commit, the SHA-256 of the bundle archive and the
digest of its files (:func:`tree_digest`: every kept file's path and SHA-256). They come from
``$EDGEBENCH_THIRD_PARTY`` (a folder laid out like ``shared/third_party``: the archives and
``SHA256SUMS``) or, when it is unset, from the upstream repositories at the same commits: the
same files are kept and their digest must equal the pin. Nothing is vendored into edgebench.

They are unpacked once under the firmware cache: ``tflite-micro/`` with its ``downloads/``
folder filled as TFLM's download scripts would (same folders, same patches), and ``api/`` with
the official MLPerf Tiny benchmark API.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.artifacts.cache import key, sha256_file
from bench.firmware import FirmwareError, cache_root
from bench.firmware.lock import locked

log = logging.getLogger(__name__)

ENV = "EDGEBENCH_THIRD_PARTY"
DOWNLOADS = "tensorflow/lite/micro/tools/make/downloads"
_TFLM_DROP = tuple(
    [f"tensorflow/lite/micro/{d}/" for d in ("examples", "integration_tests", "benchmarks",
                                             "docs", "python")]
    + [f"tensorflow/lite/micro/kernels/{d}/" for d in ("xtensa", "arc_mli", "ceva",
                                                        "test_data_generation")]
    + ["signal/testdata/", "signal/tensorflow_core/", "signal/micro/kernels/xtensa/",
       "signal/micro/kernels/hexagon/", "third_party/xtensa/", "third_party/hexagon/",
       "tensorflow/lite/micro/models/person_detect"])
_TFLM_TOOLS_KEPT = ("tensorflow/lite/micro/tools/make/",
                    "tensorflow/lite/micro/tools/generate_cc_arrays.py",
                    "tensorflow/lite/micro/tools/ci_build/binary_size_test/")


@dataclass(frozen=True)
class Pin:
    """One component: where it comes from and what its files must be."""

    name: str  # the bundle archive is ``<name>.tar.gz``, unpacking to ``<name>/``
    repo: str  # GitHub owner/name
    commit: str
    sha256: str  # of the bundle archive
    tree: str  # :func:`tree_digest` of its files
    dest: str  # where it goes, relative to the sources folder
    keep: tuple[str, ...] = ("",)  # upstream path prefixes kept (a download)
    drop: tuple[str, ...] = ()  # upstream path prefixes left out (a download)
    rename: tuple[tuple[str, str], ...] = ()  # upstream path → bundle path (a download)

    def kept(self, path: str) -> str | None:
        """The bundle path of upstream file ``path``, or None when the pin leaves it out."""
        for upstream, bundled in self.rename:
            if path == upstream:
                return bundled
        if self.rename:
            return None
        if not any(path.startswith(k) for k in self.keep) or any(
                path.startswith(d) for d in self.drop):
            return None
        if path.startswith("tensorflow/lite/micro/tools/") and not path.startswith(
                _TFLM_TOOLS_KEPT):
            return None
        return path


_D = DOWNLOADS
PINS: tuple[Pin, ...] = (
    Pin("tflite-micro", "tensorflow/tflite-micro", "90b983c2b3f1480642e040bbd2ddb37b998f3424",
        "430dc04176f48c419edbf391c7000274a865d3d91e21cf778a54282706ff64b4",
        "b9ebfff90eaa78c901774c521b184895ddb810f7db1ba529f12f3ded1cd6b442",
        "tflite-micro",
        keep=("LICENSE", "AUTHORS", "README.md", "tensorflow/", "signal/", "third_party/"),
        drop=_TFLM_DROP),
    Pin("cmsis_6", "ARM-software/CMSIS_6", "5782d6f8057906d360f4b95ec08a2354afe5c9b9",
        "9436dc54334cc720eed36e66996a81815560f960b5e904954c7d8ed55438c7fe",
        "21ec96c3d47f63d962aa0b18d09f6e802048d03abfcb9e9c6ea1c925435aa09a",
        f"tflite-micro/{_D}/cmsis", keep=("LICENSE", "README.md", "CMSIS/Core/Include/")),
    Pin("cortex_dfp", "ARM-software/Cortex_DFP", "c2c70a97a20fb355815e2ead3d4a40e35a4a3cdf",
        "ca610b2b74fa957c9af5696a80598b273fb9fbe82111b72bdd8f587324bc7e41",
        "bc91350aec2c4a9148379d3bbe1c4b69d5427ede80d6cb6dc68255415c92f009",
        f"tflite-micro/{_D}/cmsis/Cortex_DFP", keep=("LICENSE", "README.md", "Device/ARMCM")),
    Pin("cmsis_nn", "ARM-software/CMSIS-NN", "4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae",
        "5907e4391df25171096bd018bdba38399a9db638c37fc9725b164960dddce969",
        "8cde11558ee031c5a0fc818f95ad61c8934beba73d246a6124a4aa4ba04450df",
        f"tflite-micro/{_D}/cmsis_nn", keep=("LICENSE", "README.md", "Include/", "Source/")),
    Pin("flatbuffers", "google/flatbuffers", "187240970746d00bbd26b0f5873ed54d2477f9f3",
        "5cf00d1b524cf6a2dad9419ec5373d75c3e2a2de3714c78ac0d41ead5aacba38",
        "b6dd09e46236c033521fadb1ea0d3082b318c0ee88db3803da6474c4ffa945af",
        f"tflite-micro/{_D}/flatbuffers",
        keep=("LICENSE", "include/flatbuffers/", "include/codegen/")),
    Pin("gemmlowp", "google/gemmlowp", "719139ce755a0f31cbf1c37f7f98adcc7fc9f425",
        "377194310082a9d6732b7f897cd005348c8e895f608db14ac76127a1d5183690",
        "7a0532d6b448dd4692745054c14fd31f695f582c737b116e344d7dc243f075d4",
        f"tflite-micro/{_D}/gemmlowp",
        keep=("LICENSE", "fixedpoint/", "internal/detect_platform.h")),
    Pin("ruy", "google/ruy", "d37128311b445e758136b8602d1bbd2a755e115d",
        "8236f65807d16a0e22a0a8e56aee5a6c2c955a2ea52e1b7224e1b022dc2142f5",
        "cadf29c4e4569a4dea390947860e33fa48fca1e596b68b653249eccee486633d",
        f"tflite-micro/{_D}/ruy", keep=("LICENSE", "ruy/profiler/instrumentation.h")),
    Pin("kissfft", "mborgerding/kissfft", "918336beac80868ad3011cb283063bb224e3e5da",
        "16816563083dc90004c5b769ee5cd7f695552379a92ad9cb059a89863adcad81",
        "1c18dd749ad0dc1424ae4a7b97bffe4ebe85a9edecdddfeb34e7354cb63aed8b",
        f"tflite-micro/{_D}/kissfft",
        keep=("COPYING", "README", "kiss_fft.c", "kiss_fft.h", "_kiss_fft_guts.h",
              "tools/kiss_fftr.c", "tools/kiss_fftr.h")),
    Pin("mlperf_tiny_api", "mlcommons/tiny", "1afd2c9820f795965a6134facd0b4dfae41ef23f",
        "77bda40e0c02c3e875553661626fe64d3576010cdcb38373896b15affdea24d0",
        "de51403b2542e77e9c9486a39b6fda3cae72d313a613fc2beca7db4f10878ffe", "api",
        rename=(("LICENSE.md", "LICENSE.md"),
                ("benchmark/api/internally_implemented.cpp", "internally_implemented.cpp"),
                ("benchmark/api/internally_implemented.h", "internally_implemented.h"),
                ("benchmark/api/submitter_implemented.h", "submitter_implemented.h"),
                ("benchmark/reference_submissions/keyword_spotting/submitter_implemented.cpp",
                 "reference_kws_submitter_implemented.cpp"))),
)


def tree_digest(root: Path) -> str:
    """SHA-256 over the sorted ``path\\0sha256`` lines of every file under ``root``."""
    lines = sorted(f"{p.relative_to(root).as_posix()}\0{sha256_file(p)}\n"
                   for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def bundle_dir() -> Path | None:
    """``$EDGEBENCH_THIRD_PARTY`` when set (it must exist), else None (download)."""
    found = os.environ.get(ENV)
    if not found:
        return None
    path = Path(found)
    if not path.is_dir():
        raise FirmwareError(f"${ENV} is {found!r}, which is not a folder")
    return path


def sources_key() -> str:
    """Content key of the pinned sources (what a library build depends on)."""
    return key([(p.name, p.commit, p.tree) for p in PINS])[:16]


def _safe_extract(archive: Path, into: Path) -> None:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")


def _from_bundle(pin: Pin, bundle: Path, into: Path) -> Path:
    archive = bundle / f"{pin.name}.tar.gz"
    if not archive.is_file():
        raise FirmwareError(f"{archive} is missing (the {pin.name} sources, pinned at "
                            f"{pin.repo}@{pin.commit[:12]})")
    found = sha256_file(archive)
    if found != pin.sha256:
        raise FirmwareError(f"{archive}: SHA-256 {found} differs from the pinned {pin.sha256}")
    _safe_extract(archive, into)
    return into / pin.name


def _download(pin: Pin, into: Path) -> Path:
    """Fetch ``pin.repo`` at ``pin.commit``, keep the pinned files, check their digest."""
    url = f"https://github.com/{pin.repo}/archive/{pin.commit}.tar.gz"
    archive = into / f"{pin.name}-upstream.tar.gz"
    log.info("downloading %s", url)
    try:
        with urllib.request.urlopen(url, timeout=120) as response, archive.open("wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as exc:
        raise FirmwareError(f"cannot download {pin.name} from {url}: {exc} (set ${ENV} to a "
                            "folder holding the pinned archives to build offline)") from exc
    upstream = into / "upstream"
    _safe_extract(archive, upstream)
    (top,) = list(upstream.iterdir())
    dest = into / pin.name
    for path in sorted(p for p in top.rglob("*") if p.is_file()):
        kept = pin.kept(path.relative_to(top).as_posix())
        if kept is not None:
            (dest / kept).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / kept)
    shutil.rmtree(upstream)
    archive.unlink()
    return dest


def fetch(pin: Pin, into: Path, bundle: Path | None) -> Path:
    """The component's files, unpacked into ``into/<name>`` and checked against the pin."""
    root = _from_bundle(pin, bundle, into) if bundle else _download(pin, into)
    found = tree_digest(root)
    if found != pin.tree:
        where = bundle or f"{pin.repo}@{pin.commit}"
        raise FirmwareError(f"{pin.name} from {where}: file digest {found} differs from the "
                            f"pinned {pin.tree}")
    return root


def _patch(patch: Path, folder: Path, *args: str) -> None:
    with patch.open("rb") as handle:
        done = subprocess.run(["patch", "-s", *args, "-d", str(folder)], stdin=handle,
                              capture_output=True, check=False)
    if done.returncode:
        raise FirmwareError(f"applying {patch.name} failed: "
                            f"{done.stdout.decode(errors='replace')}"
                            f"{done.stderr.decode(errors='replace')}")


def _lay_out(pin: Pin, root: Path, sources: Path) -> None:
    """Move a component to its place and repeat TFLM's download-script fix-ups."""
    dest = sources / pin.dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    root.rename(dest)
    tflm = sources / "tflite-micro"
    if pin.name == "flatbuffers":
        for build_file in [*dest.rglob("BUILD"), *dest.rglob("BUILD.bazel")]:
            build_file.unlink()
        _patch(tflm / "tensorflow/lite/micro/tools/make/flatbuffers.patch", dest, "-p1", "-l")
    elif pin.name == "kissfft":
        _patch(tflm / "third_party/kissfft/kissfft.patch", dest, "-p1")


def sources_dir() -> Path:
    """The unpacked, checked sources (made once per pin set; safe across processes)."""
    sources = cache_root() / "sources" / sources_key()
    if (sources / ".complete").exists():
        return sources
    with locked(sources.with_suffix(".lock")):
        if (sources / ".complete").exists():
            return sources
        bundle = bundle_dir()
        sources.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=sources.parent, prefix=".unpack-") as tmp:
            staging = Path(tmp) / "sources"
            staging.mkdir()
            for pin in PINS:  # tflite-micro first: the others go inside it
                with tempfile.TemporaryDirectory(dir=tmp) as part:
                    _lay_out(pin, fetch(pin, Path(part), bundle), staging)
            (staging / "tflite-micro" / DOWNLOADS / "pigweed").mkdir()  # not needed
            (staging / ".complete").write_text(sources_key())
            if sources.exists():
                shutil.rmtree(sources)
            staging.rename(sources)
        log.info("third-party sources unpacked in %s", sources)
    return sources
