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
from dataclasses import dataclass

import numpy as np

from backend.domain.scheme import CodingScheme
from backend.domain.tasks import Task
from backend.storage.listing import PoolListing
from backend.studio.client import StudioAPI

MAX_AGE_SECONDS = 3600


@dataclass(frozen=True, eq=False)
class Segments:
    """A listing's tasks as a round reads them: their ids and segment texts, as arrays made once per
    listing (and text field), so that a round selects its unlabeled tasks with array operations.
    Lists of 100,000 tasks and texts made again every round cost the fast loop a tenth of a second
    and the garbage collector more (docs/benchmarks.md). Compared by identity: one listing's
    segments stay the same object, and what is computed from them (embedding and TF-IDF rows) is
    kept with that object."""

    ids: np.ndarray  # int64
    texts: np.ndarray  # str objects

    @classmethod
    def of(cls, listed: dict[int, dict], scheme: CodingScheme) -> Segments:
        ids = np.fromiter(listed, dtype=np.int64, count=len(listed))
        texts = np.empty(len(listed), dtype=object)
        texts[:] = [scheme.text_in(data) for data in listed.values()]
        return cls(ids, texts)

    def filled(self) -> np.ndarray:
        """Whether each segment has a text (a blank one carries no code)."""
        return np.fromiter((bool(text.strip()) for text in self.texts), dtype=bool, count=len(self.texts))

    def unlabeled(self, annotated_ids: Iterable[int]) -> np.ndarray:
        """The positions of the tasks not among `annotated_ids`, in listing order."""
        annotated = np.fromiter(annotated_ids, dtype=np.int64)
        return np.flatnonzero(~np.isin(self.ids, annotated))


class Pool:
    """The unlabeled tasks of one project."""

    def __init__(self, project_id: int, studio: StudioAPI, listing: PoolListing):
        self.project_id, self.studio, self.listing = project_id, studio, listing
        self._made: tuple[dict[int, dict], str, Segments] | None = None  # a listing, field, segments

    def segments(self, scheme: CodingScheme) -> Segments:
        """The kept listing's segments (listed again when missing or old); annotated tasks included,
        as the listing is (`Segments.unlabeled` leaves them out)."""
        kept = self.listing.read()
        listed = self.refresh() if kept is None or kept.age > MAX_AGE_SECONDS else kept.tasks
        made = self._made
        if made is None or made[0] is not listed or made[1] != scheme.text_field:
            made = self._made = (listed, scheme.text_field, Segments.of(listed, scheme))
        return made[2]

    def refresh(self) -> dict[int, dict]:
        """List the unlabeled tasks from Label Studio and keep the listing (id → data)."""
        started = time.time()
        tasks = self.studio.tasks(self.project_id, annotated=False, data_only=True)
        return self.listing.replace({task.id: task.data for task in tasks}, started).tasks

    def add(self, tasks: Iterable[Task]) -> None:
        self.listing.add(tasks)

    def forget(self) -> None:
        self.listing.forget()
