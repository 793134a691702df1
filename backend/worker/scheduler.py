"""The embedded work queue of one host: requests on disk, and a worker process per project and lane.

The HTTP layer only *requests* work: :meth:`Scheduler.request` leaves a marker (worker/queue.py)
and starts a child process (``python -m backend.worker PROJECT LANE``) that works off the lane's
markers while it holds the lane's lock. Training in a child process means an out-of-memory kill or
a crash never takes a server worker down, and other projects run in their own children.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from backend.storage.state import Lane, WorkKind
from backend.worker.queue import FileQueue
from backend.worker.registry import LaneRegistry

log = logging.getLogger(__name__)
MALLOC_DEFAULTS = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "131072"}


def child_env() -> dict[str, str]:
    """The environment of a worker, with glibc malloc tuned for torch on a CPU (see docs/benchmarks.md).

    Fewer arenas: freed memory is otherwise kept per thread, and a lingering worker would hold it.
    A fixed mmap threshold: glibc otherwise raises it after each large free, so activations and
    encoder batches land in the heap, fragment it and stay resident (−0.4 GB peak in a fine-tuning,
    −0.2 GB while encoding a pool). Either can be overridden in the environment.
    """
    return {**MALLOC_DEFAULTS, **os.environ}


class Scheduler:
    """Requests background work for projects and watches the child processes that do it."""

    def __init__(self, model_dir: Path, command: list[str] | None = None):
        self.queue = FileQueue(Path(model_dir))
        self.registry = LaneRegistry(Path(model_dir))
        self.command = command or [sys.executable, "-m", "backend.worker"]
        self._children: dict[tuple[str, Lane], subprocess.Popen] = {}
        self._guard = threading.Lock()

    def request(self, project: str, kind: WorkKind) -> None:
        """Leave a marker and make sure a child process works it off. Returns at once."""
        kind = WorkKind(kind)
        self.queue.put(project, kind)
        self._start_worker(project, kind.lane)

    def pending(self, project: str, lane: Lane | None = None) -> list[WorkKind]:
        return self.queue.pending(project, lane)

    def busy(self, project: str, lane: Lane) -> bool:
        return self.queue.busy(project, lane)

    def running(self) -> list[tuple[str, Lane]]:
        """The (project, lane) pairs this scheduler has a live child for."""
        with self._guard:
            return [key for key, child in self._children.items() if child.poll() is None]

    def _start_worker(self, project: str, lane: Lane) -> None:
        """Start a child for the lane unless one is already on its way or at work.

        A child needs seconds to import its libraries before it takes the lane's lock; without
        remembering the children we started, a burst of webhooks in those seconds would start
        one process each (measured: ten at 0.25 GB apiece), all but one of them to give up.
        """
        with self._guard:
            running = self._children.get((project, lane))
            if running is not None and running.poll() is None:
                return  # it takes the marker, or its reaper starts another child for it
            if self.queue.busy(project, lane):
                return  # a child of another server worker holds the lane and will find it
            child = subprocess.Popen(
                [*self.command, str(project), str(lane)], stdin=subprocess.DEVNULL, env=child_env()
            )
            self._children[(project, lane)] = child
        threading.Thread(target=self._reap, args=(project, lane, child), daemon=True).start()

    def _reap(self, project: str, lane: Lane, child: subprocess.Popen) -> None:
        """After a child ends: record a death it could not record itself, and start another child if
        a request arrived too late for it to see."""
        started = time.monotonic()
        code = child.wait()
        with self._guard:
            if self._children.get((project, lane)) is child:
                del self._children[(project, lane)]
        if code == 0 and self.queue.pending(project, lane):
            self._start_worker(project, lane)
        if code < 0:
            reason = (
                f"the training process was killed by signal {-code} after {time.monotonic() - started:.0f} s"
            )
            self.registry.failed(project, lane, reason + (" (out of memory?)" if -code == 9 else ""))
        elif code > 0:  # it may have ended before it could record why
            reason = f"the {lane} lane's process exited with status {code} before finishing its work"
            self.registry.cleanup(project, lane, self.queue, reason)
