"""Write-back: one prediction of ours per task, updated in place; the queue head only, head first,
under one served name, each version's scores below every older one's, so the tasks that leave the
head stay live and are served after it."""

import itertools
from dataclasses import replace
from datetime import timedelta

import pytest

from backend.domain.versions import IMPORTED, LIVE
from backend.learning.bias import Started, suggestion_seen
from backend.storage.layout import ProjectDir
from backend.storage.prediction_ids import PredictionIds
from backend.storage.suggestions import SuggestionLog
from backend.studio.task_predictions import IncompleteImport, TaskPredictions, queue_score
from backend.studio.writeback import (
    WritePlan,
    already_live,
    demote,
    for_coders,
    forget,
    go_live,
    withdraw,
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


def write(target, version, predictions, plan, interrupted=lambda: False, labeled=()):
    """A round's steps: go live with the plan's first predictions, write the rest, forget the tasks
    coded meanwhile."""
    live = go_live(target, version, predictions, plan.first)
    done = write_rest(target, live, plan, interrupted)
    forget(target, labeled)
    return done


def test_each_version_scores_below_every_older_one_in_queue_order():
    bands = [
        [queue_score(version, place) for place in (0.0, 0.001, 0.5, 1.0)]
        for version in ("v0-codebook-20260101000000", V1, V2, V3)
    ]
    assert all(band == sorted(band) and len(set(band)) == 4 for band in bands), "queue order within a version"
    assert all(newer[-1] <= older[0] for older, newer in itertools.pairwise(bands)), (
        "a newer version's worst first"
    )
    assert bands[0] == [0.5, 0.5005, 0.75, 1.0] and queue_score(V1, 7.0) == queue_score(V1, 1.0)
    many = [queue_score(f"v{n}-20260101000000", place) for n in (10_000, 9_999) for place in (0.0, 1e-5)]
    assert many == sorted(set(many)), "still apart at version 10,000 and a place in 100,000"


def served_tasks(studio):
    return sorted(p["task"] for p in studio.of_version(LIVE))


def test_the_head_one_by_one_and_nothing_beyond_it(studio, target):
    live = go_live(target, V1, predictions(range(300), V1), first=2)
    assert live.written == 2 and studio.calls[-1] == ("serve", LIVE) and studio.model_version == LIVE
    assert write_rest(target, live, WritePlan(first=2, head=50)) is True
    assert studio.calls[:4] == [("look up", 2), ("create", 1), ("create", 1), ("serve", LIVE)]
    assert studio.calls[4:] == [("look up", 48)] + [("create", 1)] * 48, "the tasks looked up in one read"
    assert served_tasks(studio) == list(range(50)), "the head, each task once, under the served name"
    assert target.ids.live() == dict.fromkeys(range(50), V1), "each live task with the version that wrote it"


def test_a_new_version_updates_each_task_in_place_and_is_served_before_the_leavers(studio, target, tmp_path):
    write(target, V1, predictions(range(50), V1), WritePlan(first=1, head=50))
    ids = {p["task"]: p["id"] for p in studio.predictions}
    studio.calls.clear()
    new_head = list(range(74, 24, -1))  # half the old head, half new tasks, the new ones first
    fresh = TaskPredictions(studio, 1, PredictionIds(ProjectDir(tmp_path, "1")))  # the map read from disk
    write(fresh, V2, predictions(new_head, V2), WritePlan(first=1, head=50))
    assert studio.most_per_task() == 1
    assert studio.queue() == [*new_head, *range(25)], "the new head in its order, then the leavers in theirs"
    assert {p["task"]: p["id"] for p in studio.predictions if p["task"] < 50} == ids, "ids stay"
    calls = [call for call, _ in studio.calls]
    assert calls.count("update") == 25 and calls.count("create") == 25 and "rename" not in calls
    assert "serve" not in calls, "the project serves the one name already"
    assert not studio.deleted
    saved = PredictionIds(ProjectDir(tmp_path, "1")).live()
    assert saved == {**dict.fromkeys(range(25), V1), **dict.fromkeys(new_head, V2)}, "saved, with the writers"


def test_past_its_first_places_a_version_adds_unserved_tasks_before_rewriting_an_older_heads(studio, target):
    """Under fast coders newer work stops a version early: what it wrote by then should be tasks
    coders could not be served yet, not the places an older head serves already."""
    write(target, V1, predictions(range(50), V1), WritePlan(first=1, head=50))
    studio.calls.clear()
    new_head = [
        task for pair in zip(range(25), range(50, 75), strict=True) for task in pair
    ]  # 0, 50, 1, 51...
    done = write(target, V2, predictions(new_head, V2), WritePlan(first=2, head=50, floor=26), lambda: True)
    assert done is False
    assert [call for call, _ in studio.calls].count("update") == 1, "of the older head, only the first place"
    assert studio.queue() == [0, *range(50, 75), *range(1, 50)], "its band first: every task it added"
    assert studio.most_per_task() == 1
    write(target, V3, predictions(new_head, V3), WritePlan(first=2, head=50))
    assert studio.queue() == [*new_head, *range(25, 50)], (
        "with time, the older head's places are rewritten too"
    )


def test_the_served_set_never_shrinks_when_a_new_version_goes_live(studio, target):
    write(target, V1, predictions(range(50), V1), WritePlan(first=1, head=50))
    live = go_live(target, V2, predictions(range(100, 150), V2), first=2)
    assert served_tasks(studio) == [*range(50), 100, 101], "the previous head stays served"
    assert studio.queue()[:2] == [100, 101], "served first"
    assert write_rest(target, live, WritePlan(first=2, head=50)) is True
    assert studio.queue() == [*range(100, 150), *range(50)], "and the previous head after the new one"
    assert studio.most_per_task() == 1


def test_tasks_coded_meanwhile_leave_the_live_set_with_no_call(studio, target):
    write(target, V1, predictions(range(10), V1), WritePlan(first=10))
    studio.calls.clear()
    write(target, V2, predictions(range(20, 30), V2), WritePlan(first=10), labeled={3, 4})
    assert studio.calls == [("look up", 10)] + [("create", 1)] * 10, "no call for the coded tasks"
    assert set(target.ids.live()) == {*range(10), *range(20, 30)} - {3, 4}


def test_a_queue_of_the_same_band_demotes_the_leavers_until_newer_work_waits(studio, target):
    """The codebook's queue, when the codebook changed: every one is version 0."""
    old, new = "v0-codebook-20260101000000", "v0-codebook-20260101000009"
    write(target, old, predictions(range(10), old), WritePlan(first=10))
    renames = lambda: sum(call == "rename" for call, _ in studio.calls)  # noqa: E731
    live = go_live(target, new, predictions(range(20, 30), new), 10)
    studio.annotate(9, [], user=1, when="2")
    assert demote(target, live.head_tasks(WritePlan(first=10)), {9}, lambda: renames() >= 3) is False
    assert sorted(studio.queue()) == [*range(3, 9), *range(20, 30)], "6 leavers stay served until the next"
    assert demote(target, live.head_tasks(WritePlan(first=10)), {9}) is True
    assert sorted(studio.queue()) == list(range(20, 30)) and studio.most_per_task() == 1
    assert len(studio.of_version(old)) == 9 and 9 not in target.ids.live(), "a coded task is only forgotten"


def test_a_task_a_coder_may_hold_stays_live_with_its_prediction_id(studio, target):
    """Served earlier, so perhaps locked to a coder: it keeps its prediction, current, in or out of
    the new head."""
    write(target, V1, predictions(range(10), V1), WritePlan(first=10))
    held, out = target.ids.get(0), target.ids.get(1)
    write(target, V2, predictions([50, 51, 0, 52], V2), WritePlan(first=2, head=4))
    assert target.ids.live()[0] == V2 and target.ids.get(0) == held
    assert target.ids.live()[1] == V1 and target.ids.get(1) == out
    assert {p["model_version"] for p in studio.predictions if p["id"] in (held, out)} == {LIVE}


def test_the_write_log_names_the_internal_version(studio, tmp_path):
    directory = ProjectDir(tmp_path, "1")
    target = TaskPredictions(studio, 1, PredictionIds(directory), SuggestionLog(directory))
    write(target, V1, predictions(range(3), V1), WritePlan(first=3))
    write(target, V2, predictions(range(2), V2), WritePlan(first=2))
    writes = SuggestionLog(directory).read(lambda result: [])
    assert [w.version for w in writes[0]] == [V1, V2] and [w.version for w in writes[2]] == [V1]
    started = Started("coder", 0, frozenset(), target.ids.get(0), writes[0][-1].at + timedelta(minutes=1))
    seen = suggestion_seen(started, writes[0])
    assert seen.version == V2, "automation bias judges against the version whose suggestion was live"


def test_newer_work_stops_the_head_between_two_calls_and_the_map_keeps_what_was_written(
    studio, target, tmp_path
):
    four_written = lambda: len(studio.predictions) >= 4  # noqa: E731
    done = write(target, V1, predictions(range(300), V1), WritePlan(first=1, head=100), four_written)
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


def test_a_version_that_failed_before_it_served_withdraws_what_it_wrote(studio, target):
    write(target, V1, predictions(range(5), V1), WritePlan(first=5))
    with pytest.raises(IncompleteImport):
        go_live(target, V2, predictions([0, 1, 700], V2), 3)
    withdraw(target, V2)
    assert served_tasks(studio) == [2, 3, 4] and set(target.ids.live()) == {2, 3, 4}
    assert sorted(p["task"] for p in studio.of_version(V2)) == [0, 1], "its suggestions, not served"
    assert studio.most_per_task() == 1


def test_a_prediction_deleted_in_label_studio_is_created_again(studio, target):
    write(target, V1, predictions(range(3), V1), WritePlan(first=3))
    studio.predictions = [p for p in studio.predictions if p["task"] != 1]  # a lead deleted it
    write(target, V2, predictions(range(3), V2), WritePlan(first=3))
    assert served_tasks(studio) == [0, 1, 2] and studio.most_per_task() == 1
    assert target.ids.get(1) == studio.of_version(LIVE)[-1]["id"]


def test_a_leaver_deleted_in_label_studio_is_forgotten(studio, target):
    old, new = "v0-codebook-20260101000000", "v0-codebook-20260101000009"
    write(target, old, predictions(range(3), old), WritePlan(first=3))
    studio.predictions = [p for p in studio.predictions if p["task"] != 1]  # a lead deleted it
    live = go_live(target, new, predictions([5], new), 1)
    assert demote(target, live.head_tasks(WritePlan(first=1)), ()) is True
    assert target.ids.get(1) is None and target.ids.live() == {5: new}
    assert sorted(p["task"] for p in studio.of_version(old)) == [0, 2]


def test_a_project_written_before_the_map_keeps_our_newest_prediction_of_each_task_it_writes(studio, target):
    """Versions imported whole by the code before (each task one prediction per kept version, the
    project serving the newest): a task's newest one of ours is updated in place, our older ones go
    one call each, others' predictions stay; the project switches to the served name once, and tasks
    outside the head keep their old names, no longer current, until a head reaches them."""
    for task in range(10):
        for version in (V1, V2, "someone-elses"):
            studio.hold({"task": task, "score": 0.5, "model_version": version, "result": []})
    studio.model_version = V2
    newest = {p["task"]: p["id"] for p in studio.of_version(V2)}
    write(target, V3, predictions(range(5), V3), WritePlan(first=1, head=5))
    assert {p["task"]: p["id"] for p in studio.of_version(LIVE)} == {t: newest[t] for t in range(5)}
    assert studio.served == [LIVE]
    assert [p["task"] for p in studio.of_version(V1)] == list(range(5, 10))
    assert [p["task"] for p in studio.of_version(V2)] == list(range(5, 10))
    assert len(studio.of_version("someone-elses")) == 10
    assert len(studio.deleted) == 5


def test_a_task_live_and_demoted_in_label_studio_but_unknown_to_the_map_keeps_the_live_one(studio, target):
    """A save a crash lost: the prediction under the served name is the newest of ours."""
    studio.hold({"task": 0, "score": 0.5, "model_version": LIVE, "result": []})
    studio.hold({"task": 0, "score": 0.5, "model_version": V2, "result": []})
    live_id = studio.of_version(LIVE)[0]["id"]
    write(target, V3, predictions([0], V3), WritePlan(first=1))
    assert target.ids.get(0) == live_id and studio.most_per_task() == 1


def test_predictions_of_tasks_imported_later_join_the_head(studio, target):
    write(target, V1, predictions(range(3), V1), WritePlan(first=3))
    live = already_live(1, V1, predictions([5, 6, 7], V1))
    assert write_rest(target, live, WritePlan(first=1, head=2)) is True
    assert served_tasks(studio) == [0, 1, 2, 5, 6], "the most informative, up to the head's size, join"
    assert target.ids.live() == dict.fromkeys([0, 1, 2, 5, 6], V1)


def test_the_rest_of_a_head_stops_at_its_floor_for_newer_work_and_at_half_for_another_project(target):
    """Another project's waiting round takes the slot only once half the head is written: at the
    coders' floor, three projects of the ten-project load test left their coders without tasks
    while their next rounds waited minutes for a slot."""
    tasks = range(1, 61)
    asked = []
    plan = WritePlan(first=2, head=50, floor=6)

    def others_wait():
        asked.append(len(target.ids.live()))
        return True

    live = go_live(target, V1, predictions(tasks, V1), plan.first)
    assert write_rest(target, live, plan, others_wait=others_wait) is False
    assert len(target.ids.live()) == 25 and asked == [25], "half of the head of 50"
    live = go_live(target, V2, predictions(tasks, V2), plan.first)
    assert write_rest(target, live, plan, interrupted=lambda: True, others_wait=others_wait) is False
    assert sorted(target.ids.live().values()).count(V2) == 6, "the floor, for newer work of its own"


@pytest.fixture
def importing(studio, tmp_path):
    """Our predictions of tasks that hold none go in import calls (WRITE_BY_IMPORT)."""
    directory = ProjectDir(tmp_path, "1")
    return TaskPredictions(studio, 1, PredictionIds(directory), SuggestionLog(directory), by_import=True)


def test_by_import_the_new_tasks_of_a_head_go_in_one_call_per_hundred(studio, importing):
    assert write(importing, V1, predictions(range(250), V1), WritePlan(first=2, head=250)) is True
    assert studio.calls == [("import", 2), ("serve", LIVE), ("import", 100), ("import", 100), ("import", 48)]
    assert served_tasks(studio) == list(range(250)) and studio.most_per_task() == 1
    assert importing.ids.live() == dict.fromkeys(range(250), V1)
    assert {importing.ids.get(task) for task in range(250)} == {IMPORTED}, "an import answers no ids"


def test_by_import_a_rewrite_looks_the_imported_prediction_up_and_updates_it_in_place(studio, importing):
    write(importing, V1, predictions(range(4), V1), WritePlan(first=4))
    ids = {p["task"]: p["id"] for p in studio.predictions}
    studio.calls.clear()
    write(importing, V2, predictions([10, 11, 0, 12, 13, 1, 14], V2), WritePlan(first=7))
    calls = [call for call, _ in studio.calls]
    assert calls == ["look up", "import", "update", "import", "update", "create"], (
        "the single writes' tasks looked up in one read, runs of new tasks imported, a task holding ours "
        "updated in place, a lone new task created"
    )
    assert studio.calls[0] == ("look up", 3)
    assert studio.most_per_task() == 1 and {importing.ids.get(t) for t in (0, 1)} == {ids[0], ids[1]}
    assert studio.queue() == [10, 11, 0, 12, 13, 1, 14, 2, 3]


def test_by_import_newer_work_stops_the_head_between_two_import_calls(studio, importing):
    newer_after_one_import = lambda: studio.calls.count(("import", 100)) >= 1  # noqa: E731
    done = write(
        importing, V1, predictions(range(300), V1), WritePlan(first=1, head=300), newer_after_one_import
    )
    assert done is False and len(studio.predictions) == 101


def test_by_import_predictions_label_studio_dropped_are_named_and_created_when_next_written(
    studio, importing
):
    studio.refuse_creates = True
    with pytest.raises(IncompleteImport, match="took 0 of 3 imported predictions"):
        go_live(importing, V1, predictions(range(3), V1), 3)
    studio.refuse_creates, failed = False, len(studio.calls)
    write(importing, V2, predictions(range(3), V2), WritePlan(first=3))
    assert [call for call, _ in studio.calls[failed:]] == ["look up"] + ["create"] * 3 + ["serve"]
    assert studio.most_per_task() == 1


def test_automation_bias_judges_a_coder_who_started_from_an_imported_prediction(studio, importing, tmp_path):
    write(importing, V1, predictions(range(3), V1), WritePlan(first=3))
    write(importing, V2, predictions(range(2), V2), WritePlan(first=2))
    logged = SuggestionLog(ProjectDir(tmp_path, "1")).read(lambda result: [])[0]
    parent = importing.ids.get(0)
    assert [(w.prediction, w.version) for w in logged] == [(None, V1), (parent, V2)], (
        "an import answers no id"
    )
    imported, rewritten = logged[0], replace(logged[1], at=logged[0].at + timedelta(minutes=10))
    started = Started("coder", 0, frozenset(), parent, imported.at + timedelta(minutes=5))
    assert suggestion_seen(started, [imported, rewritten]) == imported, (
        "the imported write is the parent's first"
    )


def test_the_coders_floor_counts_only_tasks_not_served_yet(studio, target):
    """Rewriting a task an older head serves adds nothing a coder can be served: newer work stops a
    version once its new tasks are written, even below the floor."""
    write(target, V1, predictions(range(10), V1), WritePlan(first=10))
    done = write(
        target, V2, predictions([20, 21, *range(10)], V2), WritePlan(first=1, head=12, floor=9), lambda: True
    )
    assert done is False
    assert target.ids.live() == {**dict.fromkeys(range(10), V1), 20: V2, 21: V2}


def test_an_older_heads_places_are_rewritten_only_within_the_coders_reach(studio, target):
    """Coders take fewer tasks than the floor before the next version writes its own: a project
    with one slow coder rewrote 15 served places a round, 46 rounds in ten minutes, while twenty
    coders of another project waited on the same Label Studio."""
    write(target, V1, predictions(range(50), V1), WritePlan(first=1, head=50))
    studio.calls.clear()
    new_head = [60, 61, *range(48)]  # two new tasks, then the older head's places
    plan = for_coders(WritePlan(first=2, head=50), 6, by_import=False)
    assert write(target, V2, predictions(new_head, V2), plan) is True
    calls = [call for call, _ in studio.calls]
    assert calls.count("create") == 2 and calls.count("update") == 4, "places 3-6 rewritten, no deeper"
    assert studio.queue()[:6] == new_head[:6], "the reach served in the new version's order"
    assert studio.most_per_task() == 1 and target.ids.live()[10] == V1


def test_a_head_grows_to_the_coders_floor_only_when_its_new_tasks_are_imported():
    plan = WritePlan(first=3, head=100)
    assert for_coders(plan, 300, by_import=False) == WritePlan(first=3, head=100, floor=100, reach=100)
    assert for_coders(plan, 300, by_import=True) == WritePlan(first=3, head=300, floor=300, reach=300)
    assert for_coders(plan, 40, by_import=True) == WritePlan(first=3, head=100, floor=40, reach=40)
    assert for_coders(plan, 5000, by_import=True).head == 1000, "ten import calls at most"
    assert for_coders(plan, 40, by_import=False, coders_moved=False).reach is None, "a new order: all of it"


def test_by_import_a_worker_killed_during_an_import_never_imports_a_task_twice(studio, tmp_path):
    """The import's record is on disk before the call: what a killed worker's import made is found by
    the next write's look-up, not imported again beside it."""

    class Killed(BaseException):
        pass

    def import_then_die(project, predictions):
        FakeStudio.import_predictions(studio, project, predictions)
        raise Killed

    studio.import_predictions = import_then_die
    directory = ProjectDir(tmp_path, "1")
    dying = TaskPredictions(studio, 1, PredictionIds(directory), by_import=True)
    with pytest.raises(Killed):
        go_live(dying, V1, predictions(range(5), V1), 5)
    del studio.import_predictions
    after_restart = TaskPredictions(studio, 1, PredictionIds(directory), by_import=True)
    write(after_restart, V2, predictions(range(5), V2), WritePlan(first=5))
    assert studio.most_per_task() == 1 and len(studio.predictions) == 5
