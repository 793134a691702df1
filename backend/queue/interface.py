"""What the rest of the backend sees of the queue: two Protocols, one inside the other.

:class:`WorkQueue` is what the HTTP layer and the jobs ask of it; :class:`LaneQueue` is what a worker
at a lane takes its work from (runner.py), the same object: the embedded Scheduler (scheduler.py,
marker files of files.py) or the RedisQueue across hosts (redis_queue.py).
"""

from __future__ import annotations

import contextlib
from typing import Protocol

from backend.queue.work import Lane, WorkKind
from backend.storage.layout import StoreLayout


class WorkQueue(Protocol):
    """What the HTTP layer and the jobs need of the queue."""

    def request(self, project: str, kind: WorkKind) -> None:
        """Ask for work; returns at once."""

    def pending(self, project: str, lane: Lane | None = None) -> list[WorkKind]:
        """The kinds of work waiting for a project (in one lane, or in all)."""

    def busy(self, project: str, lane: Lane) -> bool:
        """Whether a worker is at the project's lane right now."""


class LaneQueue(WorkQueue, Protocol):
    """What a worker needs of the queue to work off a lane, besides asking for more work."""

    layout: StoreLayout

    def put(self, project: str, kind: WorkKind) -> None:
        """Leave a request without waking anyone (a round put back)."""

    def take(self, project: str, lane: Lane) -> WorkKind | None:
        """Remove and return the lane's first pending request."""

    def drop(self, project: str) -> None:
        """Forget every request of a project."""

    def hold(self, project: str, lane: Lane) -> contextlib.AbstractContextManager[bool]:
        """Try to take the lane's lock without waiting; yields whether we hold it."""
