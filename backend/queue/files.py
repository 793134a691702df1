"""The embedded work queue's requests and locks, on one host's disk.

Requests are marker files (``MODEL_DIR/<project>/.pending-<kind>``), with one ``flock`` per project
and lane:

- a request leaves a marker; requests that arrive while one waits find it there, so a burst
  coalesces into one round, and the marker's time is how long the lane has waited;
- a worker holds the lane's lock while it works, so only one worker works a project's lane at a
  time, across every server process; the lock dies with its holder, so "is a worker at it?" is
  always answered truly.

The Scheduler (scheduler.py) starts the worker processes that take them. With REDIS_URL the same
contract holds across hosts: redis_queue.py keeps the requests and locks in Redis and wakes
`coding-backend worker` processes through RQ.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from backend.queue.work import LANE_KINDS, Lane, WorkKind
from backend.storage.layout import StoreLayout
from backend.storage.locks import file_lock, is_locked


class FileQueue:
    """Requests as marker files and one lock per lane, on one host's disk."""

    def __init__(self, root: Path):
        self.layout = StoreLayout(Path(root))

    def put(self, project: str, kind: WorkKind) -> None:
        """Leave the kind's marker; one that is there already stays as it is, its time the first
        request's (waiting_since)."""
        marker = self.layout.project(project).marker(kind)
        marker.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            marker.open("x").close()

    def waiting_since(self, project: str, lane: Lane) -> float | None:
        """When the lane's oldest request still pending was left (a Unix time), or None."""
        directory, times = self.layout.project(project), []
        for kind in LANE_KINDS[lane]:
            with contextlib.suppress(FileNotFoundError):
                times.append(directory.marker(kind).stat().st_mtime)
        return min(times, default=None)

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
            directory.starting(lane).unlink(missing_ok=True)  # the worker that was started is at work,
            yield held  # or another worker is (the one started moves on or ends)

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
