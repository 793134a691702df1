"""The one lock helper: every lock of the model store is taken here.

On one host (the default) a lock is an advisory ``flock`` on a file, shared by every process of
the host. It dies with the process that holds it, which is what makes it a reliable "is a worker at
this right now?" signal (unlike a status written to a file).

Hosts that share MODEL_DIR (REDIS_URL, README: When one machine is not enough) cannot rely on
``flock``, which network filesystems implement loosely or not at all. After :func:`share_locks`,
the lock of a file under MODEL_DIR is a Redis lock named after its path there: renewed while its
holder lives, and expiring `seconds` after the holder died, so a killed worker's lock frees itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
KEY_PREFIX = "coding-backend:lock:"


@dataclass(frozen=True)
class _SharedLocks:
    connection: Any  # redis.Redis
    root: Path
    seconds: int


_shared: _SharedLocks | None = None


def share_locks(connection: Any, root: Path, seconds: int) -> None:
    """Take the locks of files under `root` in Redis from now on (`root` is shared between hosts)."""
    global _shared
    _shared = _SharedLocks(connection, Path(root).resolve(), seconds)


def unshare_locks() -> None:
    """Take every lock with flock again (a test, or a process done with the shared store)."""
    global _shared
    _shared = None


def _redis_name(path: Path) -> str | None:
    """The Redis lock that stands for `path`, or None when `path` is locked with flock."""
    if _shared is None:
        return None
    try:
        return KEY_PREFIX + Path(path).resolve().relative_to(_shared.root).as_posix()
    except ValueError:
        return None


@contextlib.contextmanager
def file_lock(path: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on `path` (created if missing); yields whether we got it.

    With ``wait=False`` the lock is only tried: the block runs with False when another process holds it.
    """
    name = _redis_name(path)
    if name is not None:
        with redis_lock(_shared.connection, name, _shared.seconds, wait=wait) as held:
            yield held
        return
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
    name = _redis_name(path)
    if name is not None:
        return bool(_shared.connection.exists(name))
    with file_lock(path, wait=False) as free:
        return not free


@contextlib.contextmanager
def redis_lock(
    connection: Any, name: str, seconds: int, *, wait: bool = True, on_lost: Callable[[], None] | None = None
) -> Iterator[bool]:
    """Hold the Redis lock `name`, renewed every third of `seconds` while the block runs; yields
    whether we got it (``wait=False`` only tries). A holder that dies stops renewing it, and the
    lock expires `seconds` later. `on_lost` runs (in the renewing thread) when the lock expired
    while held, so a holder that others now take for dead can stop."""
    from redis.exceptions import LockError

    lock = connection.lock(name, timeout=seconds, thread_local=False)
    if not lock.acquire(blocking=wait):
        yield False
        return
    stop = threading.Event()
    renewal = threading.Thread(target=_renew, args=(lock, name, seconds, stop, on_lost), daemon=True)
    renewal.start()
    try:
        yield True
    finally:
        stop.set()
        renewal.join()
        with contextlib.suppress(LockError):  # expired meanwhile: someone else may hold it now
            lock.release()


def _renew(
    lock: Any, name: str, seconds: int, stop: threading.Event, on_lost: Callable[[], None] | None
) -> None:
    from redis.exceptions import LockError, RedisError

    while not stop.wait(seconds / 3):
        try:
            lock.reacquire()
        except LockError:
            log.error(
                "the lock %s expired while held (a pause over %d s?): another may take it", name, seconds
            )
            if on_lost is not None:
                on_lost()
            return
        except RedisError as exc:  # Redis away for a moment: the next renewal may reach it
            log.warning("renewing the lock %s failed: %s", name, exc)
