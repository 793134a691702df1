"""Re-deciding a code handed over to the model when a newer version serves: which segments it codes
from now on, and how many of the earlier decisions that changes. Pure: arrays in, counts out.

The set of segments is always every segment no coder has coded (the new version's pool): segments
coders coded since leave it (their coders' codes count, not the model's), segments imported since
join it, and the rest get the new version's decisions, compared with the earlier ones.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Decisions:
    """One code's decisions: the segments' task ids, whether each has the code, its probability."""

    task_ids: np.ndarray
    decided: np.ndarray
    proba: np.ndarray

    @classmethod
    def of(cls, task_ids, decided, proba) -> Decisions:
        return cls(np.asarray(task_ids, np.int64), np.asarray(decided, bool), np.asarray(proba, float))

    def within(self, task_ids) -> Decisions:
        """These decisions on those of `task_ids` they cover, in their own order."""
        keep = np.isin(self.task_ids, np.asarray(task_ids, np.int64))
        return Decisions(self.task_ids[keep], self.decided[keep], self.proba[keep])


@dataclass(frozen=True)
class Redecision:
    """A code's decisions from now on and what changed: segments that gained or lost the code, left
    the set because coders coded them (`coded`) or are gone from the project (`gone`), or joined it."""

    decisions: Decisions
    gained: int
    lost: int
    coded: int
    gone: int
    joined: int

    @property
    def changed(self) -> int:
        return self.gained + self.lost


def redecision(before: Decisions, after: Decisions, coded: Collection[int]) -> Redecision:
    """`after` decides from now on; compared with `before` on the segments both decide. `coded`: the
    segments coders have coded (a segment that left the set without being coded was deleted)."""
    _, was, now = np.intersect1d(before.task_ids, after.task_ids, assume_unique=True, return_indices=True)
    had, has = before.decided[was], after.decided[now]
    left = np.setdiff1d(before.task_ids, after.task_ids, assume_unique=True)
    by_coders = int(np.isin(left, np.fromiter(coded, np.int64, len(coded))).sum())
    return Redecision(
        decisions=after,
        gained=int((has & ~had).sum()),
        lost=int((had & ~has).sum()),
        coded=by_coders,
        gone=len(left) - by_coders,
        joined=len(after.task_ids) - len(now),
    )
