"""What a worker process is doing, left where its parent can read it after a native crash.

A worker started by :func:`bench.worker.call` gets ``EDGEBENCH_BREADCRUMB`` naming a file;
:func:`leave` overwrites it with one line (``TFLite Micro invoking op 3 (CONV_2D) of 12``). When
native code kills the worker with a signal, Python can say nothing more, but the file still
holds the last step it began: the parent puts it in the cell's reason. Outside a worker (no
variable) :func:`leave` does nothing; an unchanged text is not rewritten (a timed loop may call
it on every invoke).
"""

from __future__ import annotations

import os

ENV = "EDGEBENCH_BREADCRUMB"
_last: list[str] = [""]


def leave(text: str) -> None:
    """Record ``text`` as what this worker is doing now."""
    path = os.environ.get(ENV)
    if not path or text == _last[0]:
        return
    _last[0] = text
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except OSError:
        return
    try:
        os.write(fd, text.encode(errors="replace")[:1000])
    finally:
        os.close(fd)


def read(path: str | os.PathLike[str]) -> str:
    """The breadcrumb a worker left in ``path`` ("" when none)."""
    try:
        with open(path, "rb") as f:
            return f.read(1000).decode(errors="replace").strip()
    except OSError:
        return ""
