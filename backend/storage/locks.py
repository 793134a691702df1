"""The one lock helper: an advisory ``flock`` on a file, shared by every process on this host.

A lock dies with the process that holds it, which is what makes it a reliable "is a worker at
this right now?" signal (unlike a status written to a file). Not for filesystems shared between
hosts: there the work queue uses Redis locks instead.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on `path` (created if missing); yields whether we got it.

    With ``wait=False`` the lock is only tried: the block runs with False when another process holds it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_locked(path: Path) -> bool:
    """Whether some process holds the lock on `path` right now."""
    with file_lock(path, wait=False) as free:
        return not free
