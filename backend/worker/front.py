"""The tasks Label Studio may serve a coder next: the new queue's first places, and tasks it served
earlier that a coder may still hold locked.

Label Studio 1.23 (`projects/functions/next_task.py`) serves a coder first the task locked to
them: one it served them earlier that they have not annotated (the lock lasts its TASK_LOCK_TTL, a
day by default); otherwise the first unlocked task by score. (Its random pick among the first
annotators + 1 needs a team of annotators, which the Community edition does not have, and its
`upper_limit` is unused in 1.23.2.) With C coders, the others hold at most C - 1 locks, so a coder is
served one of the first C places: `front_places` takes one more, for a coder the round does not
know yet. No API lists locks, so the backend keeps which tasks were at those places of each version
that went live (`ProjectState.front`, newest first) while they are unlabeled and younger than a
lock; each new version writes them right after its own first places, with evidence
(worker/ranking.py `Queue`), at most `REMEMBERED` of them, so a round stays fast (each costs a write
and, with SetFit, about 2 s of evidence). Being in its queue head, a coder who holds one is shown
the new version's suggestion; the prediction keeps the one served name and its id.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta

from backend.storage.state import FrontTask
from backend.worker.labels import ProjectLabels

LOCK = timedelta(seconds=86_400)  # Label Studio's default TASK_LOCK_TTL: an older task is unlocked
REMEMBERED = 10  # tasks from earlier versions a round writes early: ≤ 10 × (0.1 s + ~2 s of evidence)


def front_places(labels: ProjectLabels) -> int:
    """How many of a queue's first places Label Studio may serve: one per coder who annotated, and
    one more (a coder new to the project)."""
    return labels.coders + 1


def current(front: Sequence[FrontTask], now: datetime | None = None) -> list[FrontTask]:
    """The record without tasks last at the front longer ago than a lock lasts."""
    since = (now or datetime.now(UTC)) - LOCK
    return [entry for entry in front if entry.at > since]


def to_write(front: Sequence[FrontTask]) -> tuple[int, ...]:
    """The remembered tasks a round writes early: at most REMEMBERED, the newest first."""
    return tuple(entry.task for entry in current(front)[:REMEMBERED])


def remember(
    front: Sequence[FrontTask], new: Sequence[int], labeled: Collection[int], now: datetime | None = None
) -> list[FrontTask]:
    """The record once a version with `new` at its first places went live: those first, then the
    earlier ones still unlabeled and younger than a lock; at most REMEMBERED."""
    now = now or datetime.now(UTC)
    fresh = [FrontTask(task=task, at=now) for task in dict.fromkeys(new)]
    gone = {*labeled, *new}
    kept = [entry for entry in current(front, now) if entry.task not in gone]
    return [*fresh, *kept][:REMEMBERED]
