"""Content-addressed cache of data sets, trained models, converted artifacts and evaluations.

A key is the SHA-256 of a canonical JSON recipe: everything that determines the output
(builder, parameters, data-set recipe, seed, training settings, variant steps, and the versions
of the libraries that compute it). Same recipe, same key: nothing is retrained or reconverted.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench import files

#: Libraries whose version changes what a build produces.
BUILD_LIBRARIES = ("edgebench", "tensorflow-cpu", "tensorflow", "tf-keras", "numpy", "aeon",
                   "scikit-learn", "tensorflow-model-optimization", "ai-edge-quantizer")


@cache
def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def versions(names: tuple[str, ...] = BUILD_LIBRARIES) -> dict[str, str]:
    return {n: v for n in names if (v := package_version(n)) is not None}


def key(recipe: Any) -> str:
    """SHA-256 of the canonical JSON of ``recipe``."""
    text = json.dumps(recipe, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_root() -> Path:
    return Path(os.environ.get("EDGEBENCH_CACHE", Path.cwd() / ".cache" / "edgebench"))


class Cache:
    """Folders under one root: ``datasets/``, ``models/``, ``artifacts/``, ``evaluations/``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    def dataset(self, k: str) -> Path:
        return self.root / "datasets" / f"{k}.npz"

    def model_dir(self, k: str) -> Path:
        return self.root / "models" / k

    def artifact(self, k: str, suffix: str = ".tflite") -> Path:
        return self.root / "artifacts" / f"{k}{suffix}"

    def artifact_info(self, k: str) -> Path:
        return self.root / "artifacts" / f"{k}.json"

    def evaluation(self, k: str) -> Path:
        return self.root / "evaluations" / f"{k}.json"

    def read_json(self, path: Path) -> Any | None:
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def write_json(self, path: Path, data: Any) -> None:
        self.write(path, json.dumps(data, indent=1, sort_keys=True).encode())

    def write(self, path: Path, data: bytes) -> None:
        """Write a file of the cache atomically, following no link below its root."""
        write_atomic(path, data, self.root)


def write_atomic(path: Path, data: bytes, root: Path | None = None) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename (readers never see half),
    following no link below ``root`` (:func:`bench.files.write_atomic`)."""
    files.write_atomic(path, data, root)
