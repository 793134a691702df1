"""A stand-in worker process for scheduler tests: each 'round' logs its start and end.

Each process notes its start in ``<log>.spawns`` and, like the real worker importing torch, may take
STUB_STARTUP_SECONDS before it looks for work. With STUB_MISS_FIRST (a path), the first process
exits at once without looking, as a worker does that finished just before a request arrived.
"""

import os
import sys
import time
from pathlib import Path

from backend.queue.files import FileQueue
from backend.queue.runner import work_off
from backend.queue.work import Lane


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

    def handle(kind) -> None:
        with open(log_file, "a") as log:
            log.write(f"start {kind} {time.time()}\n")
        time.sleep(seconds)
        with open(log_file, "a") as log:
            log.write(f"end {kind} {time.time()}\n")

    work_off(FileQueue(Path(model_dir)), project, handle, lane=lane)


if __name__ == "__main__":
    main()
