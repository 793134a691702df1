"""A cap on worker processes across every server process of one host (MAX_WORKER_PROCESSES).

One lock file per slot under ``MODEL_DIR/.slots/``. The scheduler takes a free slot before it
starts a worker and hands the locked file to the child, which holds it for as long as it lives: the
kernel releases it when the child exits, however it exits. With no slot free the request stays on
disk and is started when one frees up (the sweep of sweep.py starts it).

Body rounds take minutes and fast rounds seconds, so body rounds take at most half the slots (at
least one): with every project fine-tuning at once, the coders' queues still follow them. Measured
in the load tests: four body rounds held all four slots for over ten minutes while a fifth
project's annotations waited; with the last slot kept for fast rounds, ten projects' first
versions queued on that one slot behind each other while three body rounds shared the two cores
(the tenth project's live 34 s after its tenth annotation).

A fast-lane worker whose turn is over keeps its slot and moves to a lane that waited
(Scheduler.work_in_turn); it notes where it went here, so that its death is recorded against the lane it
was at, not the one it was started for.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import IO

from backend.queue.work import Lane

SLOT_ENV = "BACKEND_WORKER_SLOT"  # the number of the slot a worker process holds (the scheduler sets it)


class WorkerSlots:
    def __init__(self, root: Path, count: int):
        self.directory = Path(root) / ".slots"
        self.count = count

    @property
    def for_bodies(self) -> int:
        """How many slots body lanes may take (the lowest numbers)."""
        return max(1, self.count // 2)

    def take(self, lane: Lane = Lane.FAST, bodies_wait: bool = False) -> IO | None:
        """A locked slot file (pass it to the child, then close it here), or None when all that the
        lane may use are taken. Fast lanes try the slots body lanes never take first, and leave those
        to body lanes while one waits (`bodies_wait`), unless there are no others: fast workers
        take turns and move between lanes with their slots, so a body-lane slot they took would
        otherwise stay theirs (a stress run: two bodies waited the whole ten minutes)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if lane is Lane.BODY:
            numbers = range(self.for_bodies)
        else:
            lowest = self.for_bodies if bodies_wait and self.count > self.for_bodies else 0
            numbers = range(self.count - 1, lowest - 1, -1)
        for number in numbers:
            handle = open(self.directory / f"slot-{number}", "a")  # noqa: SIM115 - handed to the child
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return handle
            except BlockingIOError:
                handle.close()
        return None

    @staticmethod
    def number(slot: IO) -> int:
        return int(Path(slot.name).name.removeprefix("slot-"))

    def held_for_bodies(self) -> bool:
        """Whether this worker process holds a slot that body lanes may take (SLOT_ENV)."""
        number = os.environ.get(SLOT_ENV, "")
        return number.isdigit() and int(number) < self.for_bodies

    def moved(self, pid: int, project: str, lane: Lane) -> None:
        """Note that worker process `pid` moved to the project's lane (it keeps its slot)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / f"moved-{pid}").write_text(f"{project} {lane}")

    def whereabouts(self, pid: int) -> tuple[str, Lane] | None:
        """Where worker process `pid` last moved to (None if it never moved), forgetting it: call it
        once the process has ended, or when it starts (a pid of an earlier life of the server)."""
        note = self.directory / f"moved-{pid}"
        try:
            project, lane = note.read_text().split()
        except (FileNotFoundError, ValueError):
            return None
        finally:
            note.unlink(missing_ok=True)
        return project, Lane(lane)

    def free(self) -> int:
        """How many slots no process holds right now."""
        self.directory.mkdir(parents=True, exist_ok=True)
        free = 0
        for number in range(self.count):
            with open(self.directory / f"slot-{number}", "a") as handle, contextlib.suppress(BlockingIOError):
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(handle, fcntl.LOCK_UN)
                free += 1
        return free
