"""A project's unlabeled pool, listed from Label Studio and kept on disk between rounds.

Listing every task of a large project is slow for Label Studio (11,656 tasks: over a minute
while it is busy importing predictions), far too slow for the fast loop. So the listing is
kept in ``MODEL_DIR/<project>/pool.json``: work that may take its time (the first round, the
body lane, rounds for imported tasks) refreshes it, and the fast loop reads it, minus the tasks
annotated since (those it lists anyway). A listing older than MAX_AGE_SECONDS is refreshed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

from backend.studio import StudioClient, Task

MAX_AGE_SECONDS = 3600


class PoolFile:
    def __init__(self, model_dir: Path, project: str):
        self.project = project
        self.path = Path(model_dir) / project / "pool.json"

    def tasks(self, studio: StudioClient, annotated_ids: Iterable[int]) -> list[Task]:
        """Unlabeled tasks: the kept listing (refreshed when missing or old) minus annotated ones."""
        listing = self._read()
        if listing is None:
            listing = self.refresh(studio)
        annotated = set(annotated_ids)
        return [Task(task_id, data) for task_id, data in listing.items() if task_id not in annotated]

    def refresh(self, studio: StudioClient) -> dict[int, dict]:
        """List the unlabeled tasks from Label Studio and keep the listing."""
        listing = {
            task.id: task.data for task in studio.tasks(int(self.project), annotated=False, data_only=True)
        }
        self._write(listing)
        return listing

    def add(self, tasks: Iterable[Task]) -> None:
        """Tasks imported since the listing (a round for new tasks saw them)."""
        listing = self._read()
        if listing is not None:
            self._write({**listing, **{task.id: task.data for task in tasks}})

    def forget(self) -> None:
        """Drop the listing (e.g. Label Studio refused a prediction for a task that is gone)."""
        self.path.unlink(missing_ok=True)

    def _read(self) -> dict[int, dict] | None:
        try:
            if time.time() - self.path.stat().st_mtime > MAX_AGE_SECONDS:
                return None
            return {int(task_id): data for task_id, data in json.loads(self.path.read_text()).items()}
        except (OSError, ValueError):
            return None

    def _write(self, listing: dict[int, dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".pool-{os.getpid()}.json")
        partial.write_text(json.dumps(listing))
        partial.replace(self.path)
