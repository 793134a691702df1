"""A stand-in training child for scheduler tests: each 'round' logs its start and end."""

import sys
import time
from pathlib import Path

from backend.scheduler import work_off


def main() -> None:
    model_dir, log_file, seconds, project = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    lane = sys.argv[5]

    def handle(kind: str) -> None:
        with open(log_file, "a") as log:
            log.write(f"start {kind} {time.time()}\n")
        time.sleep(seconds)
        with open(log_file, "a") as log:
            log.write(f"end {kind} {time.time()}\n")

    work_off(Path(model_dir), project, handle, lane=lane)


if __name__ == "__main__":
    main()
