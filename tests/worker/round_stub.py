"""A stand-in training child for scheduler tests: each 'round' logs its start and end.

Each process also notes its start in ``<log>.spawns`` and, like the real child importing torch,
may take STUB_STARTUP_SECONDS before it looks for work.
"""

import os
import sys
import time
from pathlib import Path

from backend.scheduler import work_off


def main() -> None:
    model_dir, log_file, seconds, project = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    lane = sys.argv[5]
    with open(log_file.with_suffix(".spawns"), "a") as spawns:
        spawns.write(f"{os.getpid()}\n")
    time.sleep(float(os.environ.get("STUB_STARTUP_SECONDS", "0")))

    def handle(kind: str) -> None:
        with open(log_file, "a") as log:
            log.write(f"start {kind} {time.time()}\n")
        time.sleep(seconds)
        with open(log_file, "a") as log:
            log.write(f"end {kind} {time.time()}\n")

    work_off(Path(model_dir), project, handle, lane=lane)


if __name__ == "__main__":
    main()
