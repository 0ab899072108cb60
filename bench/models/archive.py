"""A ``.keras`` file is a zip archive: its directory is judged before anything reads an entry.

A small file can inflate to gigabytes (a 1 MB ``.keras`` whose ``config.json`` inflates to
1 GiB); :func:`check_archive` reads only the zip's central directory and refuses an archive with
too many entries, too much uncompressed data, a ``config.json`` too large to be an architecture,
or an entry compressed beyond what real model data compresses to. Python's zip reader stops at
an entry's declared size, so the bounds hold for the readers that follow (the code check, Keras).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

#: A saved Keras model holds a handful of entries (metadata, config, weights, a few assets).
MAX_ENTRIES = 1_000
#: All entries together, uncompressed.
MAX_TOTAL_BYTES = 1 << 30
#: The architecture (JSON): a large TinyML model's is well under 1 MiB.
MAX_CONFIG_BYTES = 32 << 20
#: Entries bigger than this are held to :data:`MAX_RATIO`; smaller ones cannot hurt.
RATIO_FLOOR_BYTES = 8 << 20
#: Uncompressed ÷ compressed: deflate's limit is about 1,032; real weights and JSON stay far below.
MAX_RATIO = 200


class ArchiveError(ValueError):
    """A ``.keras`` archive refused before reading (names the file, the entry and the bound)."""


def check_archive(path: Path) -> None:
    """Judge ``path``'s zip directory against the bounds above; :class:`ArchiveError` if not."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            entries = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ArchiveError(f"model file {path} is not a readable zip (.keras) archive: "
                           f"{str(e)[:200]}") from None
    if len(entries) > MAX_ENTRIES:
        raise ArchiveError(f"model file {path} holds {len(entries):,} zip entries; a .keras "
                           f"archive of up to {MAX_ENTRIES:,} is accepted")
    total = 0
    for entry in entries:
        size = entry.file_size
        total += size
        if entry.filename == "config.json" and size > MAX_CONFIG_BYTES:
            raise ArchiveError(f"model file {path}: config.json inflates to {size / 2**20:,.0f} "
                               f"MiB; an architecture of up to {MAX_CONFIG_BYTES >> 20} MiB is "
                               "accepted")
        if size > RATIO_FLOOR_BYTES and size > MAX_RATIO * max(entry.compress_size, 1):
            raise ArchiveError(f"model file {path}: entry {entry.filename[:100]!r} inflates "
                               f"{size / max(entry.compress_size, 1):,.0f}× (to "
                               f"{size / 2**20:,.0f} MiB); up to {MAX_RATIO}× is accepted")
    if total > MAX_TOTAL_BYTES:
        raise ArchiveError(f"model file {path} inflates to {total / 2**30:,.1f} GiB; .keras "
                           f"archives of up to {MAX_TOTAL_BYTES >> 30} GiB uncompressed are "
                           "accepted")
