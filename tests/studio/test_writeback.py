"""Write-back: one prediction of ours per task, updated in place; the queue head only, head first."""

import pytest

from backend.storage.layout import ProjectDir
from backend.storage.prediction_ids import PredictionIds
from backend.studio.writeback import (
    IncompleteImport,
    TaskPredictions,
    WritePlan,
    already_live,
    go_live,
    write_rest,
)
from tests.fakes import FakeStudio

V1, V2, V3 = "v1-20260101000000", "v2-20260101000001", "v3-20260101000002"


@pytest.fixture
def studio():
    """A fake Label Studio whose project holds 300 tasks."""
    studio = FakeStudio()
    for i in range(300):
        studio.add_task(f"segment {i}")
    return studio


@pytest.fixture
def target(studio, tmp_path):
    return TaskPredictions(studio, 1, PredictionIds(ProjectDir(tmp_path, "1")))


def predictions(tasks, version):
    """Predictions for `tasks`, most informative first."""
    return [
        {"task": t, "score": n / 1000, "model_version": version, "result": []} for n, t in enumerate(tasks)
    ]


def write(target, version, predictions, plan, interrupted=lambda: False):
    """Go live with the plan's first predictions, then write the rest: a round's two steps."""
    return write_rest(target, go_live(target, version, predictions, plan.first), plan, interrupted)


def test_the_head_one_by_one_and_nothing_beyond_it(studio, target):
    live = go_live(target, V1, predictions(range(300), V1), first=2)
    assert live.written == 2 and studio.calls[-1] == ("serve", V1)
    assert write_rest(target, live, WritePlan(first=2, head=50)) is True
    calls = [call for call, _ in studio.calls]
    assert calls == ["look up", "create"] * 2 + ["serve"] + ["look up", "create"] * 48
    assert sorted(p["task"] for p in studio.predictions) == list(range(50)), "the head, each task once"


def test_a_new_version_updates_each_task_in_place_and_leaves_the_rest_unserved(studio, target, tmp_path):
    write(target, V1, predictions(range(50), V1), WritePlan(first=1, head=50))
    ids = {p["task"]: p["id"] for p in studio.predictions}
    studio.calls.clear()
    new_head = list(range(25, 75))  # half the old head, half new tasks
    fresh = TaskPredictions(studio, 1, PredictionIds(ProjectDir(tmp_path, "1")))  # the map read from disk
    write(fresh, V2, predictions(new_head, V2), WritePlan(first=1, head=50))
    assert studio.most_per_task() == 1
    assert sorted(p["task"] for p in studio.of_version(V2)) == new_head
    assert sorted(p["task"] for p in studio.of_version(V1)) == list(range(25)), "old, not served"
    assert {p["task"]: p["id"] for p in studio.predictions if p["task"] < 50} == ids, "ids stay"
    assert [call for call, _ in studio.calls].count("update") == 25
    assert not studio.deleted


def test_newer_work_stops_the_head_between_two_calls_and_the_map_keeps_what_was_written(
    studio, target, tmp_path
):
    done = write(
        target, V1, predictions(range(300), V1), WritePlan(first=1, head=100), lambda: len(studio.calls) >= 8
    )
    assert done is False and len(studio.predictions) == 4
    kept = PredictionIds(ProjectDir(tmp_path, "1"))
    assert {t: kept.get(t) for t in range(4)} == {p["task"]: p["id"] for p in studio.predictions}


def test_newer_work_stops_the_head_only_after_its_floor(studio, target):
    done = write(target, V1, predictions(range(300), V1), WritePlan(first=2, head=100, floor=9), lambda: True)
    assert done is False and len(studio.predictions) == 9


def test_a_refused_prediction_before_the_switch_means_nothing_goes_live(studio, target):
    with pytest.raises(IncompleteImport, match=f"refused the prediction of {V3} for task 700"):
        go_live(target, V3, predictions([700], V3), 1)
    assert "serve" not in [call for call, _ in studio.calls]


def test_a_prediction_deleted_in_label_studio_is_created_again(studio, target):
    write(target, V1, predictions(range(3), V1), WritePlan(first=3))
    studio.predictions = [p for p in studio.predictions if p["task"] != 1]  # a lead deleted it
    write(target, V2, predictions(range(3), V2), WritePlan(first=3))
    assert sorted(p["task"] for p in studio.of_version(V2)) == [0, 1, 2] and studio.most_per_task() == 1
    assert target.ids.get(1) == studio.of_version(V2)[-1]["id"]


def test_a_project_written_before_the_map_keeps_our_newest_prediction_of_each_task_it_writes(studio, target):
    """Versions imported whole by the code before (each task one prediction per kept version):
    a task's newest one of ours is updated in place, our older ones go one call each, others'
    predictions stay; tasks outside the head keep theirs until a head reaches them."""
    for task in range(10):
        for version in (V1, V2, "someone-elses"):
            studio.hold({"task": task, "score": 0.5, "model_version": version, "result": []})
    newest = {p["task"]: p["id"] for p in studio.of_version(V2)}
    write(target, V3, predictions(range(5), V3), WritePlan(first=1, head=5))
    assert {p["task"]: p["id"] for p in studio.of_version(V3)} == {t: newest[t] for t in range(5)}
    assert [p["task"] for p in studio.of_version(V1)] == list(range(5, 10))
    assert len(studio.of_version("someone-elses")) == 10
    assert len(studio.deleted) == 5


def test_predictions_of_tasks_imported_later_join_the_head(studio, target):
    live = already_live(1, V1, predictions([5, 6, 7], V1))
    assert write_rest(target, live, WritePlan(first=1, head=2)) is True
    assert [p["task"] for p in studio.predictions] == [5, 6], "the most informative, up to the head's size"
