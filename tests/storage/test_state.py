"""The project state: typed, merged under a lock, written atomically, never silently lost."""

import json
import threading

import pytest

from backend.storage.layout import ProjectDir
from backend.storage.state import (
    ROUND_HISTORY,
    LaneStatus,
    ProjectState,
    RoundRecord,
    StateStore,
    parse_state,
)


def store(tmp_path, project="7") -> StateStore:
    return StateStore(ProjectDir(tmp_path, project))


def test_a_new_project_has_the_default_state_and_changes_merge(tmp_path):
    states = store(tmp_path)
    assert states.read() == ProjectState()

    def train(state):
        state.fast.status, state.labeled = LaneStatus.TRAINING, 3

    states.update(train)
    states.update(lambda state: setattr(state.fast, "status", LaneStatus.IDLE))
    state = states.read()
    assert (state.fast.status, state.labeled) == (LaneStatus.IDLE, 3) and state.updated_at


def test_a_wrong_value_is_refused_before_anything_is_written(tmp_path):
    states = store(tmp_path)
    states.update(lambda state: setattr(state, "labeled", 4))
    with pytest.raises(ValueError, match="labeled"):
        states.update(lambda state: setattr(state, "labeled", "many"))
    assert states.read().labeled == 4


def test_concurrent_writers_never_lose_each_others_rounds(tmp_path):
    states = store(tmp_path)

    def add_rounds(kind):
        for number in range(10):
            record = RoundRecord(kind=kind, outcome="ok", started_at=str(number), finished_at=str(number))
            states.update(lambda state, record=record: state.add_round(record))

    threads = [threading.Thread(target=add_rounds, args=(kind,)) for kind in ("train", "body")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rounds = states.read().rounds
    assert len(rounds) == ROUND_HISTORY and {r.kind for r in rounds} == {"train", "body"}


def test_rounds_are_kept_up_to_the_limit(tmp_path):
    states = store(tmp_path)
    for number in range(ROUND_HISTORY + 3):
        record = RoundRecord(kind="train", outcome="ok", started_at=str(number), finished_at=str(number))
        states.update(lambda state, record=record: state.add_round(record))
    assert [r.started_at for r in states.read().rounds] == [str(n) for n in range(3, ROUND_HISTORY + 3)]


def test_a_damaged_state_file_is_kept_aside_not_overwritten(tmp_path):
    states = store(tmp_path)
    states.update(lambda state: setattr(state, "current_version", "v3-20260101000000"))
    states.dir.state.write_text('{"current_version": "v3-2026')  # cut short
    assert states.read().current_version is None
    broken = list(states.dir.path.glob("state.json.broken-*"))
    assert len(broken) == 1 and "v3-2026" in broken[0].read_text()
    states.dir.state.write_text("[1, 2]")  # valid JSON, but not an object
    assert states.read() == ProjectState()


def test_the_flat_state_of_earlier_versions_reads_as_the_schema():
    flat = {
        "state": "failed",
        "last_error": "boom",
        "body_state": "idle",
        "body_version": "v2-x",
        "body_labeled": 12,
        "current_version": "v3-x",
        "labeled": 13,
        "label_counts": {"a": 2},
        "rounds": [{"kind": "train", "outcome": "ok", "started_at": "a", "finished_at": "b"}],
    }
    state = parse_state(flat)
    assert (state.fast.status, state.fast.error) == (LaneStatus.FAILED, "boom")
    assert (state.body.version, state.body.labeled, state.current_version) == ("v2-x", 12, "v3-x")
    assert state.monitoring.label_counts == {"a": 2} and state.rounds[0].kind == "train"
    assert json.loads(state.model_dump_json())["schema_version"] == 1
