"""A worker process's loop: take a lane's requests one at a time while holding the lane's lock."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from backend.storage.state import Lane, WorkKind
from backend.worker.queue import FileQueue

log = logging.getLogger(__name__)
LINGER_POLL_SECONDS = 0.2


def work_off(
    queue: FileQueue,
    project: str,
    handle: Callable[[WorkKind], None],
    lane: Lane = Lane.FAST,
    linger: float = 0.0,
    on_idle: Callable[[], None] | None = None,
    idle_after: float = float("inf"),
) -> int:
    """Run `handle(kind)` for the lane's pending requests while we hold its lock; returns rounds run.

    With `linger`, the worker keeps the lock (and whatever `handle` keeps in memory) and polls for
    new requests until it has been idle that many seconds: the next annotation's round starts at
    once, without a new process loading a model. `on_idle` runs once per quiet spell of
    `idle_after` seconds. After releasing the lock we look again: a request that arrived just as we
    finished (its own child found the lock still held and gave up) is picked up here, not lost.
    """
    rounds = 0
    while queue.pending(project, lane):
        with queue.hold(project, lane) as held:
            if not held:
                return rounds  # the holder will see the markers
            idle_since, idle_handled = time.monotonic(), False
            while True:
                idle = time.monotonic() - idle_since
                if kind := queue.take(project, lane):
                    handle(kind)
                    rounds += 1
                    idle_since, idle_handled = time.monotonic(), False
                elif idle < linger:
                    if on_idle and not idle_handled and idle >= idle_after:
                        idle_handled = True
                        on_idle()
                    time.sleep(LINGER_POLL_SECONDS)
                else:
                    break
    return rounds
