"""The worker process: ``python -m backend.worker PROJECT [fast|body]``.

Started by the scheduler (never inside a request); works off the project's pending requests in one
lane, then lingers (fast lane) for the next annotation. A fast-lane worker whose turn ends (others
wait for its slot: queue/scheduler.py) moves to the fast lane of the project that waited, with its
slot and its imported libraries, and exits when no lane waits.

A SIGTERM (the server stopping: its process group is told to end) ends a fast lane's lingering at
once and lets a round in hand finish (seconds), so a worker stopped while idle exits cleanly instead
of being recorded as killed; the body lane keeps the default (it dies, and its round is repaired).
"""

from __future__ import annotations

import signal
import sys
import threading

from backend.config import load_settings
from backend.config.logs import setup_logging
from backend.queue.runner import Turns
from backend.queue.scheduler import Scheduler
from backend.queue.work import Lane
from backend.worker.labels import KeptLabels
from backend.worker.lane import run_lane


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    lanes = [lane.value for lane in Lane]
    if len(args) not in (1, 2) or (len(args) == 2 and args[1] not in lanes):
        print(f"usage: python -m backend.worker PROJECT [{'|'.join(lanes)}]", file=sys.stderr)
        return 2
    project, lane = args[0], Lane(args[1] if len(args) == 2 else "fast")
    settings = load_settings()
    setup_logging(settings.server.log_level)
    scheduler = Scheduler(settings.server.model_dir, settings.server.max_worker_processes)
    stopping = threading.Event()
    kept = KeptLabels()  # what it read at each project: it may come back after a move
    if lane is Lane.FAST:
        signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())

    def work(at: str, turns: Turns) -> int:
        return run_lane(at, lane, settings, scheduler, turns, kept)

    return scheduler.work_in_turn(project, lane, work, stopping)


if __name__ == "__main__":
    sys.exit(main())
