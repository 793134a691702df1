"""The work queue: what the HTTP layer asks for, and what a worker takes.

:class:`WorkQueue` is the interface the server sees. The embedded implementation keeps requests as
marker files (``MODEL_DIR/<project>/.pending-<kind>``) and one ``flock`` per project and lane:

- a request leaves a marker; requests that arrive while one waits leave the same marker, so a
  burst coalesces into one round;
- a worker holds the lane's lock while it works, so only one worker works a project's lane at a
  time, across every server process; the lock dies with its holder, so "is a worker at it?" is
  always answered truly.

With REDIS_URL the same contract holds across hosts: worker/redis_queue.py keeps the requests and
locks in Redis and wakes `coding-backend worker` processes through RQ.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from backend.storage.layout import StoreLayout
from backend.storage.locks import file_lock, is_locked
from backend.storage.state import LANE_KINDS, Lane, WorkKind


class WorkQueue(Protocol):
    """What the HTTP layer and the jobs need of the queue."""

    def request(self, project: str, kind: WorkKind) -> None:
        """Ask for work; returns at once."""

    def pending(self, project: str, lane: Lane | None = None) -> list[WorkKind]:
        """The kinds of work waiting for a project (in one lane, or in all)."""

    def busy(self, project: str, lane: Lane) -> bool:
        """Whether a worker is at the project's lane right now."""


class LaneQueue(Protocol):
    """What a worker needs of the queue to work off a lane (worker/runner.py): the embedded
    :class:`FileQueue`, or the RedisQueue across hosts (worker/redis_queue.py)."""

    layout: StoreLayout

    def pending(self, project: str, lane: Lane | None = None) -> list[WorkKind]:
        """The kinds of work waiting for a project (in one lane, or in all)."""

    def put(self, project: str, kind: WorkKind) -> None:
        """Leave a request without waking anyone (a round put back)."""

    def take(self, project: str, lane: Lane) -> WorkKind | None:
        """Remove and return the lane's first pending request."""

    def drop(self, project: str) -> None:
        """Forget every request of a project."""

    def hold(self, project: str, lane: Lane) -> contextlib.AbstractContextManager[bool]:
        """Try to take the lane's lock without waiting; yields whether we hold it."""


class FileQueue:
    """Requests as marker files and one lock per lane, on one host's disk."""

    def __init__(self, root: Path):
        self.layout = StoreLayout(Path(root))

    def put(self, project: str, kind: WorkKind) -> None:
        marker = self.layout.project(project).marker(kind)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()

    def pending(self, project: str, lane: Lane | None = None) -> list[WorkKind]:
        directory = self.layout.project(project)
        kinds = LANE_KINDS[lane] if lane else tuple(WorkKind)
        return [kind for kind in kinds if directory.marker(kind).exists()]

    def take(self, project: str, lane: Lane) -> WorkKind | None:
        """Remove and return the lane's first pending request in LANE_KINDS order.

        One at a time: a head refit ranks the pool listing it keeps, which has no imported tasks,
        so a 'predict' request that arrived meanwhile still gets its round.
        """
        directory = self.layout.project(project)
        for kind in LANE_KINDS[lane]:
            with contextlib.suppress(FileNotFoundError):
                directory.marker(kind).unlink()
                return kind
        return None

    def drop(self, project: str) -> None:
        directory = self.layout.project(project)
        for kind in WorkKind:
            directory.marker(kind).unlink(missing_ok=True)

    @contextlib.contextmanager
    def hold(self, project: str, lane: Lane) -> Iterator[bool]:
        """Try to take the lane's lock without waiting; yields whether we hold it."""
        directory = self.layout.project(project)
        with file_lock(directory.lane_lock(lane), wait=False) as held:
            if held:
                directory.starting(lane).unlink(missing_ok=True)  # the worker that was started is at work
            yield held

    def mark_starting(self, project: str, lane: Lane) -> None:
        self.layout.project(project).starting(lane).touch()

    def starting(self, project: str, lane: Lane, within: float) -> bool:
        """Whether a worker was started for the lane less than `within` seconds ago and is not at work yet
        (it may have been started by another server process)."""
        try:
            return time.time() - self.layout.project(project).starting(lane).stat().st_mtime < within
        except FileNotFoundError:
            return False

    def busy(self, project: str, lane: Lane) -> bool:
        return is_locked(self.layout.project(project).lane_lock(lane))
