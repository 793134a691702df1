"""The embedded work queue of one host: requests on disk, and a worker process per project and lane.

The HTTP layer only *requests* work: :meth:`Scheduler.request` leaves a marker (files.py)
and starts a child process (``python -m backend.worker PROJECT LANE``) that works off the lane's
markers while it holds the lane's lock. Training in a child process means an out-of-memory kill or
a crash never takes a server worker down, and other projects run in their own children.

At most MAX_WORKER_PROCESSES children run at once on the host (slots.py). A request that finds no
free slot stays on disk; the server's sweep (sweep.py) starts it when a slot frees up, and also
starts requests left from before a restart. The child's command line is the one thing the queue
knows of the round (worker/__main__.py).

Slots are taken in turn: a fast-lane worker that always has more requests ends its turn once
another project's fast lane has waited TURN_SECONDS for a slot, and moves, slot and imported
libraries with it, to the lane that waited longest (:meth:`Scheduler.next_in_turn`); its own lane
then waits for the next worker whose turn ends. At the stress pace one large project's lane and one small
project's held the two slots body rounds leave for ten minutes, and two small projects got no round
(docs/benchmarks.md, "Load"); a turn that ended the process instead cost the large project a
process start each time and left it 4 rounds instead of 19.
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from backend.config.logs import QUIET_ENV
from backend.queue.files import FileQueue
from backend.queue.registry import LaneRegistry
from backend.queue.runner import TURN_SECONDS, Turns
from backend.queue.slots import SLOT_ENV, WorkerSlots
from backend.queue.sweep import SWEEP_SECONDS, Sweeper, logged, repair
from backend.queue.work import Lane, WorkKind
from backend.storage.layout import StoreLayout

log = logging.getLogger(__name__)
MALLOC_DEFAULTS = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "131072"}
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
    """Requests background work for projects and watches the child processes that do it; a worker
    process takes its lane's requests from it too (interface.LaneQueue)."""

    def __init__(self, model_dir: Path, max_workers: int = 4, command: list[str] | None = None):
        self.queue = FileQueue(Path(model_dir))
        self.registry = LaneRegistry(Path(model_dir))
        self.slots = WorkerSlots(Path(model_dir), max_workers)
        self.sweeper = Sweeper(self, self.registry)
        self.command = command or [sys.executable, "-m", "backend.worker"]
        self.turn_seconds = TURN_SECONDS
        self._children: dict[tuple[str, Lane], subprocess.Popen] = {}
        self._failed_at: dict[tuple[str, Lane], float] = {}
        self._told_to_wait: set[tuple[str, Lane]] = set()
        self._guard = threading.Lock()
        self._sweeper_lock: IO | None = None

    # --- the work queue's contract ----------------------------------------------------------------

    def request(self, project: str, kind: WorkKind) -> None:
        """Leave a marker and make sure a child process works it off. Returns at once."""
        kind = WorkKind(kind)
        self.queue.put(project, kind)
        self._start_worker(project, kind.lane)

    def pending(self, project: str, lane: Lane | None = None) -> list[WorkKind]:
        return self.queue.pending(project, lane)

    def busy(self, project: str, lane: Lane) -> bool:
        return self.queue.busy(project, lane)

    # --- a worker at a lane (the child process takes its work from here) ---------------------------

    @property
    def layout(self) -> StoreLayout:
        return self.queue.layout

    def put(self, project: str, kind: WorkKind) -> None:
        self.queue.put(project, kind)

    def take(self, project: str, lane: Lane) -> WorkKind | None:
        return self.queue.take(project, lane)

    def drop(self, project: str) -> None:
        self.queue.drop(project)

    def hold(self, project: str, lane: Lane) -> contextlib.AbstractContextManager[bool]:
        return self.queue.hold(project, lane)

    def others_wait_for_a_slot(
        self, project: str, lanes: tuple[Lane, ...] = tuple(Lane), waited: float = 0.0
    ) -> bool:
        """Whether every slot is taken while another project's request in one of `lanes` has waited
        `waited` seconds or more with no worker on its way (a lingering worker yields; a busy
        fast-lane worker ends its turn)."""
        if self.slots.free() != 0:
            return False
        since = time.time() - waited
        return any(first <= since for (name, _), first in self._waits(lanes).items() if name != project)

    def next_in_turn(self) -> str | None:
        """The project whose fast lane a worker that ends its turn goes to, keeping its slot: the one
        that has waited longest with no worker at it or on its way (the lane it left among them);
        None when no lane waits."""
        waits = self._waits((Lane.FAST,))
        return min(waits, key=waits.__getitem__)[0] if waits else None

    def _waits(self, lanes: tuple[Lane, ...]) -> dict[tuple[str, Lane], float]:
        """The lanes with a request and no worker at them or on their way, with their first request's
        time."""
        waits = {}
        for project in self.projects():
            for lane in lanes:
                first = self.queue.waiting_since(project, lane)
                if (
                    first is not None
                    and not self.queue.busy(project, lane)
                    and not self._on_its_way(project, lane)
                ):
                    waits[(project, lane)] = first
        return waits

    def work_in_turn(
        self, project: str, lane: Lane, work: Callable[[str, Turns], int], stopping: threading.Event
    ) -> int:
        """A worker process's life: `work(project, turns)` works off a lane; a fast-lane worker then
        moves on, with its slot, to the lane that waited longest (next_in_turn), until none waits or
        `stopping` is set (the server stops), `work` fails (Label Studio away: no round anywhere), or
        it holds a slot a waiting body lane may take (it ends, and the sweep starts the body).
        Returns the last `work`'s exit code."""
        at: str | None = project
        code = 0
        while at is not None:
            code = work(at, self._turns_at(at, stopping))
            done = code != 0 or lane is Lane.BODY or stopping.is_set() or self._a_body_wants_my_slot()
            left, at = at, None if done else self.next_in_turn()
            if at is not None:
                self.slots.moved(os.getpid(), at, lane)
                log.info("project %s: its %s worker moves on to project %s, which waits", left, lane, at)
        return code

    def _others_waited(self, project: str) -> bool:
        """Whether another project's fast lane has waited a turn's length for a slot."""
        return self.others_wait_for_a_slot(project, (Lane.FAST,), waited=self.turn_seconds)

    def _a_body_wants_my_slot(self) -> bool:
        """In a worker process: whether it holds a slot a waiting body lane may take."""
        return self.slots.held_for_bodies() and self._bodies_wait()

    def _bodies_wait(self) -> bool:
        """Whether a project's body lane waits for a slot, with no worker at it or on its way."""
        return bool(self._waits((Lane.BODY,)))

    def _turns_at(self, project: str, stopping: threading.Event) -> Turns:
        """A worker at `project`'s lane stops lingering when others wait for a slot or the server
        stops, and a busy one's turn ends when another project's fast lane has waited a turn's length
        for a slot, or a body lane waits for the one it holds."""
        return Turns(
            lambda: stopping.is_set() or self.others_wait_for_a_slot(project),
            self.turn_seconds,
            lambda: self._others_waited(project) or self._a_body_wants_my_slot(),
        )

    # --- sweeping (sweep.py) ----------------------------------------------------------------------

    def start_sweeping(self, every: float = SWEEP_SECONDS) -> None:
        """Look for requests that wait for a worker every `every` seconds, in a daemon thread."""
        self.sweeper.start(every)

    def sweep(self) -> int:
        return self.sweeper.sweep()

    def projects(self) -> list[str]:
        return self.queue.layout.projects()

    @contextlib.contextmanager
    def sweeping(self, every: float) -> Iterator[bool]:
        """One server process sweeps at a time: the first to take the sweeper lock keeps it for good."""
        if self._sweeper_lock is None:
            lock = self.queue.layout.sweeper_lock
            lock.parent.mkdir(parents=True, exist_ok=True)
            self._sweeper_lock = open(lock, "a")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(self._sweeper_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = True
        except BlockingIOError:
            held = False
        yield held

    def start_waiting(self, project: str, lane: Lane) -> int:
        """Start a child for the lane's waiting requests unless it just crashed (no restart loop)."""
        if time.monotonic() - self._failed_at.get((project, lane), -1e9) < CRASH_BACKOFF_SECONDS:
            return 0
        return int(self._start_worker(project, lane))

    # --- the children -----------------------------------------------------------------------------

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
            if self.queue.busy(project, lane) or self._on_its_way(project, lane):
                return False  # a child (perhaps of another server worker) holds the lane or will soon
            slot = self.slots.take(lane, bodies_wait=lane is Lane.FAST and self._bodies_wait())
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
                    env={**child_env(), SLOT_ENV: str(self.slots.number(slot))},
                    pass_fds=(slot.fileno(),),
                )
            self._children[(project, lane)] = child
            self.slots.whereabouts(child.pid)  # a note of an earlier process with its pid
        threading.Thread(target=self._reap, args=(project, lane, child), daemon=True).start()
        return True

    def _on_its_way(self, project: str, lane: Lane) -> bool:
        """Whether a child was started for the lane and has not taken it yet: ours while it lives (it
        imports its libraries first, seconds or, under load, longer), another server process's for
        STARTUP_GRACE_SECONDS."""
        child = self._children.get((project, lane))
        ours = child is not None and child.poll() is None
        return self.queue.starting(project, lane, float("inf") if ours else STARTUP_GRACE_SECONDS)

    def _reap(self, project: str, lane: Lane, child: subprocess.Popen) -> None:
        """After a child ends: record a death it could not record itself, at the lane it was at last
        (it may have moved: next_in_turn), and start another child if a request arrived too late for
        it to see."""
        started = time.monotonic()
        code = child.wait()
        with self._guard:
            if self._children.get((project, lane)) is child:
                del self._children[(project, lane)]
                self.queue.layout.project(project).starting(lane).unlink(missing_ok=True)  # not starting
        last = self.slots.whereabouts(child.pid) or (project, lane)
        if code != 0:
            self._failed_at[last] = time.monotonic()
        if code == 0:
            for at in {(project, lane), last}:
                if self.queue.pending(*at):
                    self._start_worker(*at)
            return  # nothing to record (and no lock file to touch: a dropped project leaves nothing)
        project, lane = last
        if self.queue.busy(project, lane):
            return  # another worker is at the lane: the death was not there
        with logged(f"project {project}: recording how the {lane} worker ended"):
            if code < 0:
                reason = f"the {lane} lane's process was killed by signal {-code} after "
                reason += f"{time.monotonic() - started:.0f} s" + (" (out of memory?)" if -code == 9 else "")
                if repair(self, self.registry, project, lane, reason) is None:
                    self.registry.failed(project, lane, reason)
            elif code > 0:  # it may have ended before it could record why
                reason = f"the {lane} lane's process exited with status {code} (see the backend's log)"
                if repair(self, self.registry, project, lane, reason) is None:
                    self.registry.exited(project, lane, reason)
