"""The one sweep of both queues, and the one repair of abandoned work.

Every few seconds one server process (the one that holds the queue's sweeper lock) looks at every
project's lanes: work a dead worker abandoned (its status says busy, no process holds its lock) is
recorded and asked for once more, and a lane whose request waits with no worker at it gets one, as
the queue allows: the embedded Scheduler starts a child when a slot is free, the RedisQueue wakes a
job when the request's job was lost.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Protocol

from backend.queue.interface import WorkQueue
from backend.queue.registry import LaneRegistry
from backend.queue.work import Lane, WorkKind

log = logging.getLogger(__name__)
SWEEP_SECONDS = 2.0
ENDED = "the {lane} lane's process ended without finishing (killed, or the server restarted)"


class SweptQueue(WorkQueue, Protocol):
    """What the sweep needs of a queue besides the requests."""

    def projects(self) -> list[str]:
        """The projects that may have requests or lanes to repair."""

    def sweeping(self, every: float) -> contextlib.AbstractContextManager[bool]:
        """Try to be the one process that sweeps (sweeping every `every` s); yields whether this one is."""

    def start_waiting(self, project: str, lane: Lane) -> int:
        """Start (or wake) a worker for the lane's waiting requests as the queue allows; returns how many."""


def repair(
    queue: WorkQueue, registry: LaneRegistry, project: str, lane: Lane, reason: str | None = None
) -> WorkKind | None:
    """Record the work of a lane that no worker holds as abandoned, if its status says busy, and ask for
    it once more (registry.py says when not); returns the kind asked for."""
    kind = registry.abandoned(project, lane, reason or ENDED.format(lane=lane))
    if kind is not None:
        queue.request(project, kind)
    return kind


def waiting(queue: WorkQueue, projects: Iterable[str]) -> list[tuple[str, Lane]]:
    """(project, lane) pairs with a request that no worker is at."""
    return [
        (project, lane)
        for project in projects
        for lane in Lane
        if queue.pending(project, lane) and not queue.busy(project, lane)
    ]


@contextlib.contextmanager
def logged(what: str) -> Iterator[None]:
    """One project's failure (a full disk, say) is logged and does not hold up the others."""
    try:
        yield
    except OSError as exc:
        log.error("%s failed: %s", what, exc)


class Sweeper:
    """Sweeps a queue: in a daemon thread of each server process, one process at a time."""

    def __init__(self, queue: SweptQueue, registry: LaneRegistry):
        self.queue, self.registry = queue, registry
        self._started = False

    def start(self, every: float = SWEEP_SECONDS) -> None:
        """Sweep every `every` seconds in a daemon thread (once per process)."""
        if not self._started:
            self._started = True
            threading.Thread(target=self._sweep_forever, args=(every,), daemon=True).start()

    def sweep(self) -> int:
        """Repair work whose worker died unseen (a restart, a killed host), then start a worker for
        every lane with a request and no worker; returns how many were started."""
        projects = self.queue.projects()
        for project in projects:
            for lane in Lane:
                with logged(f"project {project}: repairing the {lane} lane's state"):
                    if not self.queue.busy(project, lane):
                        repair(self.queue, self.registry, project, lane)
        started = 0
        for project, lane in waiting(self.queue, projects):
            with logged(f"project {project}: starting a {lane} worker"):
                started += self.queue.start_waiting(project, lane)
        return started

    def _sweep_forever(self, every: float) -> None:
        while True:
            time.sleep(every)
            try:
                with self.queue.sweeping(every) as held:
                    if held:
                        self.sweep()
            except Exception:  # a sweep must never stop sweeping (Redis away for a moment, say)
                log.exception("sweeping for waiting work failed")
