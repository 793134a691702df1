"""The one owner of each lane's status: work starts and finishes here, and abandoned work is
repaired here (as rq's ``StartedJobRegistry.cleanup``), whoever notices it.

Work is abandoned when its worker dies: killed (out of memory, a restart of the server), or exited
with an error before recording one. A lane whose status says busy while no process holds its lock
was abandoned (the status is set only under the lock, and cleared before the lock is released).
Abandoned work is recorded as failed and requested once more; if that attempt dies too, it waits
for the next event, so a worker that always runs out of memory is not restarted forever.
"""

from __future__ import annotations

import logging
from pathlib import Path

from backend.storage.layout import StoreLayout
from backend.storage.state import Lane, LaneStatus, RoundRecord, StateStore, WorkKind, now
from backend.worker.queue import WorkQueue

log = logging.getLogger(__name__)
STATUS_OF = {WorkKind.PREDICT: LaneStatus.PREDICTING, WorkKind.EMBED: LaneStatus.ENCODING}


class LaneRegistry:
    """Records what each project's lanes are doing, in the project's state."""

    def __init__(self, root: Path):
        self.layout = StoreLayout(Path(root))

    def states(self, project: str) -> StateStore:
        return StateStore(self.layout.project(project))

    def started(self, project: str, kind: WorkKind) -> str:
        """Mark the lane at work; returns the start time for :meth:`finished`."""
        status = STATUS_OF.get(kind, LaneStatus.TRAINING)

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
            if not error:
                lane.retried = False
            if kind.lane is Lane.FAST:
                state.progress = None  # the round's steps are over, whatever they reported
            state.add_round(record)

        self.states(project).update(finish)

    def failed(self, project: str, lane: Lane, reason: str) -> None:
        """Record that the lane cannot work (e.g. Label Studio cannot be reached)."""
        log.error("project %s: %s", project, reason)

        def fail(state) -> None:
            record = state.lane(lane)
            record.status, record.error = LaneStatus.FAILED, reason

        self.states(project).update(fail)

    def abandoned(self, project: str, lane: Lane, reason: str, queue: WorkQueue) -> WorkKind | None:
        """Record work whose worker died while it was busy, and request it again unless it was already a
        second attempt; returns the kind requested again (None when the lane was not busy)."""
        retry: list[WorkKind] = []

        def record(state) -> None:
            lane_state = state.lane(lane)
            if not lane_state.status.busy:
                return
            if not lane_state.retried:
                retry.append(_kind_of(lane, lane_state.status))
                lane_state.retried = True
            lane_state.status, lane_state.error = LaneStatus.FAILED, reason

        if not self.states(project).read().lane(lane).status.busy:
            return None
        self.states(project).update(record)
        log.error("project %s: %s%s", project, reason, "; asking for it again" if retry else "")
        for kind in retry:
            queue.request(project, kind)
        return retry[0] if retry else None

    def exited(self, project: str, lane: Lane, code: int, queue: WorkQueue) -> None:
        """Record a worker that exited with status `code` (nonzero), unless it recorded its failure itself."""
        reason = f"the {lane} lane's process exited with status {code} (see the backend's log)"
        if self.abandoned(project, lane, reason, queue) is not None:
            return

        def record(state) -> None:
            lane_state = state.lane(lane)
            if lane_state.status is not LaneStatus.FAILED:
                lane_state.status, lane_state.error = LaneStatus.FAILED, reason

        log.error("project %s: %s", project, reason)
        self.states(project).update(record)

    def cleanup(self, project: str, lane: Lane, queue: WorkQueue) -> bool:
        """Whether a worker is at the lane now; work left busy by a process that died while no one
        watched (out of memory, a restart) is recorded and requested again (see the module)."""
        if queue.busy(project, lane):
            return True
        reason = f"the {lane} lane's process ended without finishing (killed, or the server restarted)"
        self.abandoned(project, lane, reason, queue)
        return False


def _kind_of(lane: Lane, status: LaneStatus) -> WorkKind:
    """What a busy lane was doing."""
    if lane is Lane.BODY:
        return WorkKind.EMBED if status is LaneStatus.ENCODING else WorkKind.BODY
    return WorkKind.PREDICT if status is LaneStatus.PREDICTING else WorkKind.TRAIN
