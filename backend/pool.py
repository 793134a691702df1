"""A project's unlabeled pool, listed from Label Studio and kept on disk between rounds.

Listing every task of a large project is slow for Label Studio (11,656 tasks: over a minute
while it is busy importing predictions), far too slow for the fast loop. So the listing is
kept in ``MODEL_DIR/<project>/pool.json``: work that may take its time (the first round, the
body lane) refreshes it, rounds for imported tasks add to it, and the fast loop reads it, minus
the tasks annotated since (those it lists anyway). A listing older than MAX_AGE_SECONDS (since it
was listed, whatever was added since) is refreshed.

Two lanes write it: the body lane lists the pool (a minute on a busy server) while the fast lane
may add imported tasks. Writes hold a lock, and a listing keeps what was added while it ran.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from backend.studio import StudioClient, Task

MAX_AGE_SECONDS = 3600


@dataclass
class Listing:
    """Unlabeled tasks (id → data) as listed at `listed_at`, plus tasks added since (id → when)."""

    tasks: dict[int, dict]
    listed_at: float
    added_at: dict[int, float] = field(default_factory=dict)


class PoolFile:
    def __init__(self, model_dir: Path, project: str):
        self.project = project
        self.path = Path(model_dir) / project / "pool.json"

    def tasks(self, studio: StudioClient, annotated_ids: Iterable[int]) -> list[Task]:
        """Unlabeled tasks: the kept listing (refreshed when missing or old) minus annotated ones."""
        listing = self._read()
        if listing is None or time.time() - listing.listed_at > MAX_AGE_SECONDS:
            tasks = self.refresh(studio)
        else:
            tasks = listing.tasks
        annotated = set(annotated_ids)
        return [Task(task_id, data) for task_id, data in tasks.items() if task_id not in annotated]

    def refresh(self, studio: StudioClient) -> dict[int, dict]:
        """List the unlabeled tasks from Label Studio and keep the listing, with any tasks added
        while it ran."""
        started = time.time()
        listed = {
            task.id: task.data for task in studio.tasks(int(self.project), annotated=False, data_only=True)
        }
        with self._locked():
            kept = self._read()
            late = {} if kept is None else {i: t for i, t in kept.added_at.items() if t >= started}
            listing = Listing({**listed, **{i: kept.tasks[i] for i in late}}, started, late)
            self._write(listing)
        return listing.tasks

    def add(self, tasks: Iterable[Task]) -> None:
        """Tasks imported since the listing (a round for new tasks saw them)."""
        with self._locked():
            listing = self._read()
            if listing is not None:
                now = time.time()
                for task in tasks:
                    listing.tasks[task.id], listing.added_at[task.id] = task.data, now
                self._write(listing)

    def forget(self) -> None:
        """Drop the listing (e.g. Label Studio refused a prediction for a task that is gone)."""
        self.path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(".pool-lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _read(self) -> Listing | None:
        try:
            kept = json.loads(self.path.read_text())
            return Listing(
                {int(i): data for i, data in kept["tasks"].items()},
                float(kept["listed_at"]),
                {int(i): float(t) for i, t in kept["added_at"].items()},
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # none yet, or an older format: list afresh

    def _write(self, listing: Listing) -> None:
        partial = self.path.with_name(f".pool-{os.getpid()}.json")
        partial.write_text(json.dumps({"listed_at": listing.listed_at, "tasks": listing.tasks,
                                       "added_at": listing.added_at}))  # fmt: skip
        partial.replace(self.path)
