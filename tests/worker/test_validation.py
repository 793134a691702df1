"""The blind validation sample against the in-memory Label Studio: drawn, served without a suggestion
one task in K, held out of training, released; a round's estimates on it."""

import numpy as np
import pytest

from backend.learning.strategies import Ranking
from backend.queue.work import WorkKind
from backend.storage.validation import ValidationStore
from backend.worker.ranking import Queue
from backend.worker.validation import NoModelError, SampleError, draw, release
from tests.fakes import FakeStudio, RecordingQueue
from tests.helpers import project_context, written_by
from tests.worker.test_jobs import run_round, state_of, webhook_brings


def context(settings, studio, queue=None):
    return project_context(studio, settings, settings.server.model_dir, queue)


def queue_of(studio, model_dir, version):
    """The predictions of `version` as Label Studio serves them: by score, lowest first."""
    return sorted(written_by(studio, model_dir, version), key=lambda p: p["score"])


def blind(prediction) -> bool:
    return all(item["value"] == {"choices": []} for item in prediction["result"]) and prediction["result"]


def validation_runs(settings):
    import mlflow

    client = mlflow.MlflowClient(
        tracking_uri=f"sqlite:///{settings.server.model_dir.resolve() / 'mlflow.db'}"
    )
    experiment = client.get_experiment_by_name("label-studio-project-1").experiment_id
    return client.search_runs([experiment], "tags.kind = 'validation'")


def test_queue_puts_the_blind_tasks_at_every_kth_place_and_scores_follow_the_places():
    ranking = Ranking(np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0]), np.linspace(0, 1, 6))
    ids = [10, 11, 12, 13, 14, 15]
    found = Queue(blind=(11, 15), every=2).interleaved(ranking, ids)
    assert [ids[i] for i in found.order] == [10, 11, 12, 15, 13, 14]
    assert list(found.scores[found.order]) == sorted(found.scores)
    # more blind tasks than places: the rest of them at the end, in the order drawn
    found = Queue(blind=(14, 13, 12), every=3).interleaved(ranking, ids)
    assert [ids[i] for i in found.order] == [10, 11, 14, 15, 13, 12]
    assert Queue().interleaved(ranking, ids) is ranking


def places_one_by_one(order: list[int], blind: list[int], every: int) -> list[int]:
    """The queue's order as a loop over its places builds it (the rule `Queue.interleaved` states)."""
    rest, blind, placed = [i for i in order if i not in blind], list(blind), []
    while blind or rest:
        due = blind and (not rest or (len(placed) + 1) % every == 0)
        placed.append((blind if due else rest).pop(0))
    return placed


def test_the_queue_places_blind_tasks_as_a_loop_over_its_places_would():
    rng = np.random.default_rng(3)
    for _ in range(300):
        size = int(rng.integers(1, 40))
        ids = rng.permutation(1000)[:size]
        ranking = Ranking(rng.random(size), np.linspace(0, 1, size))
        drawn = [*rng.permutation(ids)[: int(rng.integers(0, size + 1))].tolist(), 5000]  # one gone
        every = int(rng.integers(1, 6))
        found = Queue(tuple(drawn), every).interleaved(ranking, ids)
        at = {task: i for i, task in enumerate(ids.tolist())}
        expected = places_one_by_one(ranking.order.tolist(), [at[t] for t in drawn if t in at], every)
        assert found.order.tolist() == expected, (size, drawn, every)


def test_a_sample_needs_a_model_and_enough_uncoded_segments(segments, settings):
    studio = FakeStudio(segments, annotated=12)
    ctx = context(settings, studio)
    with pytest.raises(NoModelError, match="no model yet"):
        draw(ctx, size=5, seed=1, every=3)
    run_round(settings, studio)
    with pytest.raises(SampleError, match="only 24 uncoded segment"):
        draw(ctx, size=25, seed=1, every=3)
    with pytest.raises(SampleError, match="at least 1"):
        draw(ctx, size=5, seed=1, every=0)
    with pytest.raises(SampleError, match="no validation sample to release"):
        release(ctx)
    assert ctx.validation.read() is None


def test_a_sample_is_a_seeded_uniform_draw_of_the_uncoded_segments_recorded_and_served_next(
    segments, settings
):
    studio = FakeStudio(segments, annotated=12)
    run_round(settings, studio)
    queue = RecordingQueue()
    sample = draw(context(settings, studio, queue), size=6, seed=4, every=3)
    assert len(set(sample.task_ids)) == 6 and set(sample.task_ids) <= set(studio.unlabeled_ids())
    assert (sample.drawn_from, sample.coded_before, sample.seed, sample.every) == (24, 12, 4, 3)
    again = draw(context(settings, FakeStudio(segments, annotated=12)), size=6, seed=4, every=3)
    assert again.task_ids == sample.task_ids  # the seed reproduces it
    assert ValidationStore(context(settings, studio).store.layout.project("1")).read() == again
    assert queue.requests == [("1", WorkKind.TRAIN)]


def test_the_sample_is_served_blind_at_every_kth_place_of_the_queue(segments, settings):
    studio = FakeStudio(segments, annotated=12)
    run_round(settings, studio)
    sample = draw(context(settings, studio), size=6, seed=4, every=3)
    version = run_round(settings, studio).current_version
    served = queue_of(studio, settings.server.model_dir, version)
    assert len(served) == 24
    places = [n for n, p in enumerate(served, start=1) if p["task"] in sample.task_ids]
    assert places == [3, 6, 9, 12, 15, 18]
    assert all(blind(served[n - 1]) for n in places)
    assert [p["task"] for p in served if blind(p)] == sample.task_ids  # in the order drawn
    others = [p for p in served if p["task"] not in sample.task_ids]
    assert all("score" in item for p in others for item in p["result"])  # the model's decisions
    assert not any(blind(p) for p in others)


def test_coded_sample_tasks_are_held_out_estimated_and_released(segments, settings):
    studio = FakeStudio(segments, annotated=12)
    run_round(settings, studio)
    ctx = context(settings, studio)
    sample = draw(ctx, size=8, seed=2, every=2)
    for task in sample.task_ids:
        studio.annotate(task, segments[task]["codes"], user=1, when="2")
    for task in sample.task_ids[:2]:  # a second coder on two of them, who disagrees on one
        studio.annotate(task, segments[task]["codes"] if task == sample.task_ids[0] else [], user=2, when="3")
    state = run_round(settings, studio)
    assert state.labeled == 12  # the 8 coded sample tasks are not trained on
    estimates = ctx.validation.read().estimates
    assert estimates.version == state.current_version and estimates.coded == 8 and estimates.held_out
    assert estimates.agreement["tasks"] == 2, "the coders' agreement on the sample"
    physical = estimates.codes["physical_health"]
    assert physical["f1"]["n"] == 8 and set(physical["prevalence"]) == {"ppi", "classical"}
    for figure in (physical["precision"], physical["recall"]):
        assert figure["low"] is None or figure["low"] <= figure["estimate"] <= figure["high"]
    [run] = validation_runs(settings)
    assert run.data.tags["model_version"] == state.current_version
    assert run.data.params["validation_held_out"] == "True" and run.data.metrics["validation_coded"] == 8
    assert run.data.metrics["validation_f1_n_physical_health"] == 8.0  # F1's n: every coded sample task
    assert "validation_prevalence_ppi_low_physical_health" in run.data.metrics

    release(ctx)
    state = run_round(settings, studio)
    assert state.labeled == 20
    released = ctx.validation.read().estimates
    assert released.version == state.current_version and released.coded == 8 and not released.held_out
    assert state_of(settings).current_version == state.current_version


def test_a_round_whose_successor_waits_leaves_the_estimates_to_it(segments, settings):
    from backend.queue.files import FileQueue
    from backend.queue.work import Lane
    from backend.worker.wiring import project_work

    lanes = FileQueue(settings.server.model_dir)
    studio = FakeStudio(segments, annotated=12)
    work = project_work("1", settings, studio, RecordingQueue(lanes))
    work.run(WorkKind.TRAIN)
    ctx = context(settings, studio)
    sample = draw(ctx, size=4, seed=2, every=2)
    for task in sample.task_ids:
        studio.annotate(task, segments[task]["codes"], user=1, when="2")
        webhook_brings(settings, studio, task)
    lanes.put("1", WorkKind.TRAIN)  # the next annotation's round waits: a coder waits for it
    work.run(WorkKind.TRAIN)
    assert ctx.validation.read().estimates is None
    assert lanes.take("1", Lane.FAST) is WorkKind.TRAIN  # taken, as the runner does
    work.run(WorkKind.TRAIN)
    assert state_of(settings).fast.error is None
    assert ctx.validation.read().estimates.coded == 4
