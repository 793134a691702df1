"""The one owner of each lane's status: work starts and finishes here, and abandoned work is
repaired here (as rq's ``StartedJobRegistry.cleanup``), whoever notices it."""

from __future__ import annotations

import logging
from pathlib import Path

from backend.storage.layout import StoreLayout
from backend.storage.state import Lane, LaneStatus, RoundRecord, StateStore, WorkKind, now
from backend.worker.queue import WorkQueue

log = logging.getLogger(__name__)


class LaneRegistry:
    """Records what each project's lanes are doing, in the project's state."""

    def __init__(self, root: Path):
        self.layout = StoreLayout(Path(root))

    def states(self, project: str) -> StateStore:
        return StateStore(self.layout.project(project))

    def started(self, project: str, kind: WorkKind) -> str:
        """Mark the lane at work; returns the start time for :meth:`finished`."""
        status = LaneStatus.PREDICTING if kind is WorkKind.PREDICT else LaneStatus.TRAINING

        def start(state) -> None:
            state.lane(kind.lane).status = status

        self.states(project).update(start)
        return now()

    def finished(self, project: str, kind: WorkKind, started_at: str, error: str | None) -> None:
        """Mark the lane idle (or failed with `error`) and record the round."""
        record = RoundRecord(
            kind=kind, outcome="failed" if error else "ok", started_at=started_at, finished_at=now()
        )

        def finish(state) -> None:
            lane = state.lane(kind.lane)
            lane.status, lane.error = (LaneStatus.FAILED, error) if error else (LaneStatus.IDLE, None)
            state.add_round(record)

        self.states(project).update(finish)

    def failed(self, project: str, lane: Lane, reason: str) -> None:
        """Record that the lane's work ended without finishing (its process died)."""
        log.error("project %s: %s", project, reason)

        def fail(state) -> None:
            record = state.lane(lane)
            record.status, record.error = LaneStatus.FAILED, reason

        self.states(project).update(fail)

    def cleanup(self, project: str, lane: Lane, queue: WorkQueue, reason: str | None = None) -> bool:
        """Whether a worker is at the lane now; a status left busy by a process that died while no one
        watched (out of memory, a restart) is corrected to failed, with `reason` when it is known."""
        if queue.busy(project, lane):
            return True
        if self.states(project).read().lane(lane).status.busy:
            self.failed(
                project, lane, reason or f"the {lane} lane's process ended without finishing (killed?)"
            )
        return False
