"""A project's unlabeled pool as the jobs see it: the kept listing, listed again when it is old.

Listing every task of a large project is slow for Label Studio (11,656 tasks: over a minute while
it is busy importing predictions), far too slow for the fast loop. So work that may take its time
(the first round, the body lane) lists the pool, rounds for imported tasks add to it, and the fast
loop reads the kept listing minus the tasks annotated since (those it lists anyway). A listing
older than MAX_AGE_SECONDS is listed again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from backend.domain.tasks import Task
from backend.storage.listing import PoolListing
from backend.studio.client import StudioAPI

MAX_AGE_SECONDS = 3600


class Pool:
    """The unlabeled tasks of one project."""

    def __init__(self, project_id: int, studio: StudioAPI, listing: PoolListing):
        self.project_id, self.studio, self.listing = project_id, studio, listing
        self._made: tuple[dict[int, dict], list[Task]] | None = None  # a listing and its tasks

    def unlabeled(self, annotated_ids: Iterable[int]) -> list[Task]:
        """Unlabeled tasks: the kept listing (listed again when missing or old) minus annotated ones."""
        kept = self.listing.read()
        tasks = self.refresh() if kept is None or kept.age > MAX_AGE_SECONDS else kept.tasks
        annotated = set(annotated_ids)
        return [task for task in self._tasks_of(tasks) if task.id not in annotated]

    def _tasks_of(self, listed: dict[int, dict]) -> list[Task]:
        """The listing's tasks, made once per listing (the reader keeps an unchanged one), not once
        per round: 100,000 new objects a round cost the garbage collector more than the rest of it."""
        if self._made is None or self._made[0] is not listed:
            self._made = (listed, [Task(task_id, data) for task_id, data in listed.items()])
        return self._made[1]

    def refresh(self) -> dict[int, dict]:
        """List the unlabeled tasks from Label Studio and keep the listing (id → data)."""
        started = time.time()
        tasks = self.studio.tasks(self.project_id, annotated=False, data_only=True)
        return self.listing.replace({task.id: task.data for task in tasks}, started).tasks

    def add(self, tasks: Iterable[Task]) -> None:
        self.listing.add(tasks)

    def forget(self) -> None:
        self.listing.forget()
