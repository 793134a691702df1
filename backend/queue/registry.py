"""The one owner of each lane's status: work starts and finishes here, and abandoned work is
recorded here (as rq's ``StartedJobRegistry``), whoever notices it.

Work is abandoned when its worker dies: killed (out of memory, a restart of the server), or exited
with an error before recording one. A lane whose status says busy while no process holds its lock
was abandoned (the status is set only under the lock, and cleared before the lock is released).
Abandoned work is recorded as failed and asked for once more (queue/sweep.py: `repair`); if that
attempt dies too, it waits for the next event, so a worker that always runs out of memory is not
restarted forever. The registry only records: it never asks the queue for anything.
"""

from __future__ import annotations

import logging
from pathlib import Path

from backend.queue.work import Lane, WorkKind
from backend.storage.layout import StoreLayout
from backend.storage.state import LaneStatus, RoundRecord, StateStore, now

log = logging.getLogger(__name__)


class LaneRegistry:
    """Records what each project's lanes are doing, in the project's state."""

    def __init__(self, root: Path):
        self.layout = StoreLayout(Path(root))

    def states(self, project: str) -> StateStore:
        return StateStore(self.layout.project(project))

    def started(self, project: str, kind: WorkKind) -> str:
        """Mark the lane at work; returns the start time for :meth:`finished`."""
        self.states(project).update(lambda state: state.lane(kind.lane).start(kind))
        return now()

    def finished(self, project: str, kind: WorkKind, started_at: str, error: str | None) -> None:
        """Mark the lane idle (or failed with `error`) and record the round."""
        record = RoundRecord(
            kind=kind, outcome="failed" if error else "ok", started_at=started_at, finished_at=now()
        )

        def finish(state) -> None:
            state.lane(kind.lane).finish(error)
            if kind.lane is Lane.FAST:
                state.progress = None  # the round's steps are over, whatever they reported
            state.add_round(record)

        self.states(project).update(finish)

    def failed(self, project: str, lane: Lane, reason: str) -> None:
        """Record that the lane cannot work (e.g. Label Studio cannot be reached)."""
        log.error("project %s: %s", project, reason)
        self.states(project).update(lambda state: state.lane(lane).fail(reason))

    def abandoned(self, project: str, lane: Lane, reason: str) -> WorkKind | None:
        """Record the work of a lane no worker holds as failed if its status says busy; returns the
        kind to ask for once more (None when the lane was not busy, or this was the second attempt)."""
        retry: list[WorkKind] = []

        def record(state) -> None:
            lane_state = state.lane(lane)
            if not lane_state.busy:
                return
            if not lane_state.retried:
                retry.append(WorkKind(lane_state.at_work_on()))
                lane_state.retried = True
            lane_state.fail(reason)

        if not self.states(project).read().lane(lane).busy:
            return None
        self.states(project).update(record)
        log.error("project %s: %s%s", project, reason, "; asking for it again" if retry else "")
        return retry[0] if retry else None

    def exited(self, project: str, lane: Lane, reason: str) -> None:
        """Record a worker that exited with an error, unless it recorded its failure itself."""

        def record(state) -> None:
            lane_state = state.lane(lane)
            if lane_state.status is not LaneStatus.FAILED:
                lane_state.fail(reason)

        log.error("project %s: %s", project, reason)
        self.states(project).update(record)
