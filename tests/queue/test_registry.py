"""The lane registry records a lane's lifecycle in the words state.json has always held, and says what
abandoned work to ask for again (once)."""

import pytest

from backend.queue.registry import LaneRegistry
from backend.queue.work import Lane, WorkKind
from backend.storage.state import LaneStatus


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (WorkKind.TRAIN, LaneStatus.TRAINING),
        (WorkKind.PREDICT, LaneStatus.PREDICTING),
        (WorkKind.BODY, LaneStatus.TRAINING),
        (WorkKind.EMBED, LaneStatus.ENCODING),
    ],
)
def test_abandoned_work_is_recorded_and_asked_for_again_once(tmp_path, kind, status):
    registry = LaneRegistry(tmp_path)
    registry.started("1", kind)
    assert registry.states("1").read().lane(kind.lane).status is status
    assert registry.abandoned("1", kind.lane, "killed") is kind
    registry.started("1", kind)  # the second attempt dies too
    assert registry.abandoned("1", kind.lane, "killed again") is None
    lane = registry.states("1").read().lane(kind.lane)
    assert (lane.status, lane.error, lane.retried) == (LaneStatus.FAILED, "killed again", True)


def test_a_lane_that_is_not_busy_has_nothing_abandoned(tmp_path):
    registry = LaneRegistry(tmp_path)
    started = registry.started("1", WorkKind.TRAIN)
    registry.finished("1", WorkKind.TRAIN, started, None)
    assert registry.abandoned("1", Lane.FAST, "killed") is None
    state = registry.states("1").read()
    assert state.fast.status is LaneStatus.IDLE and [r.kind for r in state.rounds] == ["train"]
