"""The one way to replace a file or publish a directory so that a crash or power loss never leaves
half of one: write beside it, fsync the file, rename over, fsync the directory.

Without the fsyncs a rename can reach the disk before the data it names: after a power cut the
file is there but empty (a truncated ``state.json`` would read as a project that never trained).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_identity(path: Path) -> tuple[int, int, int] | None:
    """Which write of a file is on disk (None: there is none): every write here replaces the file
    with a new inode, so a reader may keep what it parsed while this stays the same."""
    try:
        found = Path(path).stat()
    except OSError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size


def write_atomically(path: Path, content: bytes | str) -> None:
    """Replace `path` with `content` (text is written as UTF-8)."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    write_with(path, lambda handle: handle.write(data))


def write_with(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Replace `path` with what `write` puts into a binary file handle (e.g. ``np.savez``)."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        with open(partial, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    sync_directory(path.parent)


def publish_directory(partial: Path, final: Path) -> None:
    """Rename a fully written directory into place, with its files and the rename on disk.

    Raises OSError when `final` exists (another process published under that name first).
    """
    for file in Path(partial).rglob("*"):
        if file.is_file():
            _sync_file(file)
    Path(partial).rename(final)
    sync_directory(Path(final).parent)


def sync_directory(directory: Path) -> None:
    """Make a rename or a new file in `directory` durable."""
    with contextlib.suppress(OSError):  # some filesystems cannot open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _sync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
