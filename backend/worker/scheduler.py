"""The embedded work queue of one host: requests on disk, and a worker process per project and lane.

The HTTP layer only *requests* work: :meth:`Scheduler.request` leaves a marker (worker/queue.py)
and starts a child process (``python -m backend.worker PROJECT LANE``) that works off the lane's
markers while it holds the lane's lock. Training in a child process means an out-of-memory kill or
a crash never takes a server worker down, and other projects run in their own children.

At most MAX_WORKER_PROCESSES children run at once on the host (worker/slots.py). A request that
finds no free slot stays on disk; the server's sweep starts it when a slot frees up, and also
starts requests left from before a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from backend.config.logs import QUIET_ENV
from backend.storage.state import Lane, WorkKind
from backend.worker.queue import FileQueue
from backend.worker.registry import LaneRegistry
from backend.worker.slots import WorkerSlots

log = logging.getLogger(__name__)
MALLOC_DEFAULTS = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "131072"}
SWEEP_SECONDS = 2.0
STARTUP_GRACE_SECONDS = 30.0  # a worker imports its libraries before it takes the lane's lock
CRASH_BACKOFF_SECONDS = 30.0


def child_env() -> dict[str, str]:
    """The environment of a worker, with glibc malloc tuned for torch on a CPU (see docs/benchmarks.md),
    and the libraries' banners and progress bars off (config/logs.py).

    Fewer arenas: freed memory is otherwise kept per thread, and a lingering worker would hold it.
    A fixed mmap threshold: glibc otherwise raises it after each large free, so activations and
    encoder batches land in the heap, fragment it and stay resident (−0.4 GB peak in a fine-tuning,
    −0.2 GB while encoding a pool); encoding lifts it while it runs (worker/memory.py: 1.45x the
    speed for 0.07 GB). Any of them can be overridden in the environment.
    """
    quiet = {} if os.environ.get("LOG_LEVEL", "").upper() == "DEBUG" else QUIET_ENV
    return {**MALLOC_DEFAULTS, **quiet, **os.environ}


class Scheduler:
    """Requests background work for projects and watches the child processes that do it."""

    def __init__(self, model_dir: Path, max_workers: int = 4, command: list[str] | None = None):
        self.queue = FileQueue(Path(model_dir))
        self.registry = LaneRegistry(Path(model_dir))
        self.slots = WorkerSlots(Path(model_dir), max_workers)
        self.command = command or [sys.executable, "-m", "backend.worker"]
        self._children: dict[tuple[str, Lane], subprocess.Popen] = {}
        self._failed_at: dict[tuple[str, Lane], float] = {}
        self._told_to_wait: set[tuple[str, Lane]] = set()
        self._guard = threading.Lock()
        self._sweeping = False

    def start_sweeping(self, every: float = SWEEP_SECONDS) -> None:
        """Look for requests that wait for a worker every `every` seconds, in a daemon thread."""
        if not self._sweeping:
            self._sweeping = True
            threading.Thread(target=self._sweep_forever, args=(every,), daemon=True).start()

    def sweep(self) -> int:
        """Repair work whose worker died unseen (a restart), then start a worker for every lane with a
        request and no worker, as slots allow; returns how many were started."""
        for project in self.queue.layout.projects():
            for lane in Lane:
                with self._logged(f"project {project}: repairing the {lane} lane's state"):
                    self.registry.cleanup(project, lane, self)
        started = 0
        for project, lane in self.waiting():
            if time.monotonic() - self._failed_at.get((project, lane), -1e9) < CRASH_BACKOFF_SECONDS:
                continue  # it just crashed: do not restart it in a loop
            with self._logged(f"project {project}: starting a {lane} worker"):
                started += self._start_worker(project, lane)
        return started

    @staticmethod
    @contextlib.contextmanager
    def _logged(what: str) -> Iterator[None]:
        """One project's failure (a full disk, say) is logged and does not hold up the others."""
        try:
            yield
        except OSError as exc:
            log.error("%s failed: %s", what, exc)

    def waiting(self, besides: str | None = None) -> list[tuple[str, Lane]]:
        """(project, lane) pairs with a request that no worker is at (other than project `besides`)."""
        found = []
        for project in self.queue.layout.projects():
            if project == besides:
                continue
            for lane in Lane:
                if self.queue.pending(project, lane) and not self.queue.busy(project, lane):
                    found.append((project, lane))
        return found

    def others_wait_for_a_slot(self, project: str) -> bool:
        """Whether every slot is taken while another project's request waits (a lingering worker yields)."""
        return self.slots.free() == 0 and bool(self.waiting(besides=project))

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

    def _start_worker(self, project: str, lane: Lane) -> bool:
        """Start a child for the lane unless one is already on its way or at work, or no slot is free.

        A child needs seconds to import its libraries before it takes the lane's lock; without
        remembering the children we started, a burst of webhooks in those seconds would start
        one process each (measured: ten at 0.25 GB apiece), all but one of them to give up.
        """
        with self._guard:
            running = self._children.get((project, lane))
            if running is not None and running.poll() is None:
                return False  # it takes the marker, or its reaper starts another child for it
            if self.queue.busy(project, lane) or self.queue.starting(project, lane, STARTUP_GRACE_SECONDS):
                return False  # a child (perhaps of another server worker) holds the lane or will soon
            slot = self.slots.take(lane)
            if slot is None:
                if (project, lane) not in self._told_to_wait:  # once per wait, not every sweep
                    self._told_to_wait.add((project, lane))
                    log.info("project %s: no worker slot free for its %s lane; its work waits", project, lane)
                return False
            self._told_to_wait.discard((project, lane))
            self.queue.mark_starting(project, lane)
            with slot:
                child = subprocess.Popen(
                    [*self.command, str(project), str(lane)],
                    stdin=subprocess.DEVNULL,
                    env=child_env(),
                    pass_fds=(slot.fileno(),),
                )
            self._children[(project, lane)] = child
        threading.Thread(target=self._reap, args=(project, lane, child), daemon=True).start()
        return True

    def _sweep_forever(self, every: float) -> None:
        """One server process sweeps at a time (it holds the sweeper lock); the others stand by."""
        lock = self.queue.layout.sweeper_lock
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "a") as handle:
            while True:
                time.sleep(every)
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # kept for good once taken
                except BlockingIOError:
                    continue
                try:
                    self.sweep()
                except Exception:  # a sweep must never stop sweeping
                    log.exception("sweeping for waiting work failed")

    def _reap(self, project: str, lane: Lane, child: subprocess.Popen) -> None:
        """After a child ends: record a death it could not record itself, and start another child if
        a request arrived too late for it to see."""
        started = time.monotonic()
        code = child.wait()
        with self._guard:
            if self._children.get((project, lane)) is child:
                del self._children[(project, lane)]
            self.queue.layout.project(project).starting(lane).unlink(missing_ok=True)  # it is not starting
        if code != 0:
            self._failed_at[(project, lane)] = time.monotonic()
        if code == 0 and self.queue.pending(project, lane):
            self._start_worker(project, lane)
        with self._logged(f"project {project}: recording how the {lane} worker ended"):
            if code < 0:
                reason = f"the {lane} lane's process was killed by signal {-code} after "
                reason += f"{time.monotonic() - started:.0f} s" + (" (out of memory?)" if -code == 9 else "")
                if self.registry.abandoned(project, lane, reason, self) is None:
                    self.registry.failed(project, lane, reason)
            elif code > 0:  # it may have ended before it could record why
                self.registry.exited(project, lane, code, self)
