"""A stand-in worker process for scheduler tests: each 'round' logs its project, kind, start and end.

Each process notes its start in ``<log>.spawns`` and, like the real worker importing torch, may take
STUB_STARTUP_SECONDS before it looks for work. With STUB_MISS_FIRST (a path), the first process
exits at once without looking, as a worker does that finished just before a request arrived. It
lives as a real worker does (Scheduler.work_in_turn): it lingers STUB_LINGER_SECONDS, ends a busy
turn after STUB_TURN_SECONDS, and moves to lanes that wait, counting STUB_MAX_WORKERS slots.
"""

import os
import sys
import threading
import time
from pathlib import Path

from backend.queue.runner import Lingering, Turns, work_off
from backend.queue.scheduler import Scheduler
from backend.queue.work import Lane, WorkKind


def main() -> None:
    model_dir, log_file, seconds, project = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    lane = Lane(sys.argv[5])
    with open(log_file.with_suffix(".spawns"), "a") as spawns:
        spawns.write(f"{os.getpid()}\n")
    missed = os.environ.get("STUB_MISS_FIRST")
    if missed and not Path(missed).exists():
        Path(missed).touch()
        return
    time.sleep(float(os.environ.get("STUB_STARTUP_SECONDS", "0")))
    scheduler = Scheduler(Path(model_dir), int(os.environ.get("STUB_MAX_WORKERS", "4")))
    scheduler.turn_seconds = float(os.environ.get("STUB_TURN_SECONDS", scheduler.turn_seconds))
    linger = float(os.environ.get("STUB_LINGER_SECONDS", "0"))

    def work(at: str, turns: Turns) -> int:
        def handle(kind: WorkKind) -> None:
            with open(log_file, "a") as log:
                log.write(f"start {at}/{kind} {time.time()}\n")
            time.sleep(seconds)
            with open(log_file, "a") as log:
                log.write(f"end {at}/{kind} {time.time()}\n")

        work_off(scheduler, at, handle, lane=lane, lingering=Lingering(linger, turns=turns))
        return 0

    scheduler.work_in_turn(project, lane, work, threading.Event())


if __name__ == "__main__":
    main()
