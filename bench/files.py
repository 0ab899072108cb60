"""Writing files the store, run lock and cache keep: never through a link, never in part.

Every path is opened component by component below a *root* the user chose (the result store,
the cache): the root itself is followed (a link the user passed on purpose), each folder under
it and the file itself are opened with ``O_NOFOLLOW``, so a link planted in a run folder (a
``run.lock`` pointing at ``~/.bashrc``) is refused (:class:`LinkRefused`) instead of written
through. Every write checks it wrote every byte; a full disk or quota (``ENOSPC``, ``EDQUOT``)
becomes :class:`DiskFull` naming the folder and how much was needed, which the CLI prints as
one line (exit status 3).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

#: errno values that mean "no room": the disk is full or the user's quota is spent.
NO_ROOM = {errno.ENOSPC, errno.EDQUOT}
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class LinkRefused(OSError):
    """A path under a store or cache root that is a symbolic link (or not a folder)."""

    def __str__(self) -> str:
        return str(self.args[-1])


class DiskFull(OSError):
    """A write that found no room: ``folder`` and the bytes it ``needed``."""

    def __init__(self, folder: Path, needed: int, code: int = errno.ENOSPC) -> None:
        self.folder, self.needed = Path(folder), needed
        what = "the disk quota is used up" if code == errno.EDQUOT else "no space left"
        super().__init__(code, f"{what} on the file system of {self.folder} (a write of "
                               f"{_size(needed)} did not fit)")

    def __str__(self) -> str:
        return str(self.args[1])

    @classmethod
    def relayed(cls, message: str) -> DiskFull:
        """The DiskFull a worker process reported (its message as it gave it)."""
        e = cls(Path("."), 0)
        e.args = (errno.ENOSPC, message)
        return e


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"


def _relative(path: Path, root: Path | None) -> tuple[Path, tuple[str, ...]]:
    """``(start folder, components)``: ``path`` as components below ``root`` (default: its own
    parent, so only the file itself is checked)."""
    path = Path(os.path.abspath(path))
    if root is not None:
        root = Path(os.path.abspath(root))
        try:
            return root, path.relative_to(root).parts
        except ValueError:
            pass
    return path.parent, (path.name,)


@contextmanager
def _folder(start: Path, parts: tuple[str, ...], create: bool) -> Iterator[int]:
    """A descriptor of ``start/parts…`` reached without following a link below ``start``;
    missing folders are made when ``create``."""
    if create:
        start.mkdir(parents=True, exist_ok=True)
    fd = os.open(start, DIR_FLAGS)
    try:
        for i, part in enumerate(parts):
            if create:
                with suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            try:
                nxt = os.open(part, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _refused(start.joinpath(*parts[:i + 1])) from None
                raise
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def _refused(path: Path) -> LinkRefused:
    kind = "a symbolic link" if os.path.islink(path) else "not a regular file or folder"
    return LinkRefused(errno.ELOOP, f"{path} is {kind}; edgebench does not write through "
                                    "links (remove it, or pass the real folder)")


def open_file(path: Path, flags: int, root: Path | None = None, mode: int = 0o644) -> int:
    """``os.open`` of ``path`` (folders made) without following a link in it below ``root``
    (default: the file itself only); :class:`LinkRefused` when one is there."""
    start, parts = _relative(path, root)
    with _folder(start, parts[:-1], create=bool(flags & os.O_CREAT)) as dir_fd:
        try:
            return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise _refused(Path(path)) from None
            raise


def make_folder(path: Path, root: Path | None = None) -> None:
    """``mkdir -p`` of ``path`` below ``root`` refusing a link on the way."""
    start, parts = _relative(path, root)
    with _folder(start, parts, create=True):
        pass


def check_folder(path: Path, root: Path | None = None) -> None:
    """:class:`LinkRefused` when ``path`` (or a folder between ``root`` and it) is a link."""
    start, parts = _relative(path, root)
    with _folder(start, parts, create=False):
        pass


def write_all(fd: int, data: bytes, path: Path) -> None:
    """Write every byte of ``data`` to ``fd`` (a short write is continued); no room becomes
    :class:`DiskFull` for ``path``'s folder."""
    view = memoryview(data)
    try:
        while view:
            n = os.write(fd, view)
            if n <= 0:
                raise DiskFull(Path(path).parent, len(view))
            view = view[n:]
    except OSError as e:
        if e.errno in NO_ROOM and not isinstance(e, DiskFull):
            raise DiskFull(Path(path).parent, len(view), e.errno) from None
        raise


def fsync(fd: int, path: Path, size: int) -> None:
    """``os.fsync``, a full disk (delayed allocation) becoming :class:`DiskFull`."""
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno in NO_ROOM:
            raise DiskFull(Path(path).parent, size, e.errno) from None
        raise


def append(path: Path, data: bytes, root: Path | None = None) -> None:
    """Append ``data`` with one write (``O_APPEND``), fsynced."""
    fd = open_file(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, root)
    try:
        write_all(fd, data, path)
        fsync(fd, path, len(data))
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, root: Path | None = None) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename (readers never see half; a
    link at ``path`` is replaced, not followed). On a full disk the temporary file is removed
    and ``path`` keeps its old content."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    start, parts = _relative(path, root)
    with _folder(start, parts[:-1], create=True) as dir_fd:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(tmp.name, flags, 0o644, dir_fd=dir_fd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise _refused(tmp) from None
            raise
        try:
            try:
                write_all(fd, data, path)
                fsync(fd, path, len(data))
            finally:
                os.close(fd)
            os.replace(tmp.name, parts[-1], src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp.name, dir_fd=dir_fd)
            raise


def not_a_file(path: Path, what: str = "file") -> str | None:
    """Why ``path`` cannot be read as a regular file (``"model file x is a directory"``), or
    None when it can; a link is judged by what it points at and says so."""
    import stat

    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        dangling = " (a symbolic link to nothing)" if os.path.islink(path) else ""
        return f"{what} {path} does not exist{dangling}"
    except OSError as e:
        return f"{what} {path} cannot be read: {e.strerror}"
    if stat.S_ISREG(mode):
        return None
    kinds = {stat.S_ISDIR: "a directory", stat.S_ISCHR: "a character device",
             stat.S_ISBLK: "a block device", stat.S_ISFIFO: "a named pipe",
             stat.S_ISSOCK: "a socket"}
    kind = next((name for test, name in kinds.items() if test(mode)), "not a regular file")
    via = f" (a symbolic link to {os.path.realpath(path)})" if os.path.islink(path) else ""
    return f"{what} {path} is {kind}{via}, not a regular file"
