"""Arguments several sub-commands share, declared once: the result store, device folders, the
artifact cache, verbosity; and how a ``--device`` value (an id or a file) is read."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.devices.device import Device


class _Given(argparse.Action):
    """Stores the value and notes that the user gave it (``<dest>_given``)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        setattr(namespace, f"{self.dest}_given", True)


def add_results(p: argparse.ArgumentParser) -> None:
    """``--results DIR``: the result store (default ``results``; ``results_given`` says
    whether the user named it: a default store that is a link is not written through)."""
    p.add_argument("--results", default="results", action=_Given,
                   help="result store (default: results)")
    p.set_defaults(results_given=False)


def add_devices_dir(p: argparse.ArgumentParser) -> None:
    """``--devices-dir DIR`` (repeatable): extra folders of device files, searched first."""
    p.add_argument("--devices-dir", type=Path, action="append", default=None,
                   help="extra folder of device files (repeatable; searched first)")


def add_cache(p: argparse.ArgumentParser) -> None:
    """``--cache DIR``: the artifact cache (default ``$EDGEBENCH_CACHE`` or
    ``.cache/edgebench``)."""
    p.add_argument("--cache", type=Path, default=None,
                   help="artifact cache (default: $EDGEBENCH_CACHE or .cache/edgebench)")


def add_model_target(p: argparse.ArgumentParser) -> None:
    """``TARGET``: a .tflite file or a cell of the latest run (resolved by
    :mod:`bench.artifacts.export`)."""
    p.add_argument("target", help="a .tflite file, or a cell id model/variant@device "
                                  "(or model/variant) of the latest run")


def add_verbose(p: argparse.ArgumentParser) -> None:
    """``-v/--verbose``: log progress details."""
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")


def add_quiet(p: argparse.ArgumentParser) -> None:
    """``-q/--quiet``: no progress bar."""
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def read_device(ref: str, dirs: list[Path] | None) -> Device:
    """A ``--device`` value: a device file (``.yaml``/``.yml`` or an existing file) or an id
    looked up in ``dirs`` and the default device folders."""
    from bench.devices.device import find_device, load_device, search_dirs

    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"device file {path} not found")
        return load_device(path)
    return find_device(ref, search_dirs(dirs))
