"""Handing codes over to the model: the refusal rule on the validation estimates, the decisions kept
with their provenance outside Label Studio, and `--undo`."""

import numpy as np
import pytest

from backend.learning.validation import Corpus, Sample, estimate_codes
from backend.storage.validation import Estimates, ValidationSample
from backend.worker.autocode import Targets, autocode, redecide, store_of, undo
from backend.worker.publish import Ranked, Trained
from backend.worker.validation import SampleError
from tests.fakes import FakeStudio
from tests.helpers import CODES, project_context
from tests.worker.test_jobs import run_round


def measured(version: str, held_out: bool = True) -> Estimates:
    """Estimates on 200 sample segments: the model decides physical_health perfectly (60 positives),
    mental_health right only half of the time, the other codes perfectly."""
    rng = np.random.default_rng(0)
    truth = rng.random((200, len(CODES))) < 0.3
    truth[:60, 0], truth[60:, 0] = True, False
    decided = truth.copy()
    decided[:, 1] = np.where(rng.random(200) < 0.5, truth[:, 1], ~truth[:, 1])
    corpus = Corpus(10, np.zeros(len(CODES), int), np.full((50, len(CODES)), 0.3))
    found = estimate_codes(CODES, Sample(truth, decided, decided.astype(float)), corpus)
    codes = {code: figures.as_dict() for code, figures in found.items()}
    return Estimates(version=version, computed_at="2026-12-06", coded=200, held_out=held_out, codes=codes)


@pytest.fixture
def served(segments, settings):
    """A project whose serving version has estimates on a validation sample."""
    studio = FakeStudio(segments, annotated=12)
    version = run_round(settings, studio).current_version
    ctx = project_context(studio, settings, settings.server.model_dir)
    sample = ValidationSample(task_ids=[20, 21], seed=1, every=5, drawn_from=24, coded_before=12)
    ctx.validation.replace(sample.model_copy(update={"estimates": measured(version)}))
    return ctx, studio, version


def test_autocode_needs_estimates_known_codes_and_targets_in_the_unit_interval(segments, settings, served):
    ctx, _, version = served
    bare = project_context(FakeStudio(segments, annotated=12), settings, settings.server.model_dir / "other")
    with pytest.raises(SampleError, match="no validation estimates: draw a sample first"):
        autocode(bare, ["physical_health"], Targets(0.9, 0.8))
    for wrong in ((0.0, 0.8), (0.9, 1.5)):
        with pytest.raises(SampleError, match=r"a target must lie in \(0, 1\]"):
            Targets(*wrong)
    with pytest.raises(
        SampleError, match=r"unknown code.*physical_helth.*the project's codes are physical_health"
    ):
        autocode(ctx, ["physical_helth"], Targets(0.9, 0.8))
    ctx.validation.update(lambda kept: setattr(kept, "estimates", measured(version, held_out=False)))
    with pytest.raises(SampleError, match="released into training"):
        autocode(ctx, ["physical_health"], Targets(0.9, 0.8))
    ctx.validation.update(lambda kept: setattr(kept, "estimates", measured("v0-older")))
    with pytest.raises(SampleError, match="estimates are of v0-older"):
        autocode(ctx, ["physical_health"], Targets(0.9, 0.8))
    assert store_of(ctx).read().codes == {}


def test_a_code_above_target_is_handed_over_with_provenance_one_below_is_refused_and_undo_restores(
    settings, served
):
    ctx, studio, version = served
    calls = len(studio.calls)
    verdicts = autocode(ctx, ["physical_health", "mental_health"], Targets(0.9, 0.8))
    accepted, refused = verdicts
    assert accepted.accepted and accepted.code == "physical_health"
    assert not refused.accepted and refused.short[0].startswith("precision 0.")
    assert "is below 0.90" in refused.short[0] and refused.more_segments is None  # a coin flip stays one
    kept = store_of(ctx).read().codes
    assert list(kept) == ["physical_health"]
    handed = kept["physical_health"]
    assert handed.version == version and handed.estimate["precision"]["low"] >= 0.9
    assert (handed.min_precision, handed.min_recall) == (0.9, 0.8)
    assert sorted(handed.task_ids) == sorted(studio.unlabeled_ids()), "every segment no coder coded"
    assert len(handed.decisions) == len(handed.probabilities) == 24
    assert all(0 <= p <= 1 for p in handed.probabilities)
    assert [call for call, _ in studio.calls[calls:]] == ["read labels"], "nothing written to Label Studio"

    assert run_round(settings, studio).labeled == 12, "never learned from"
    assert undo(ctx, None) == ["physical_health"]
    assert store_of(ctx).read().codes == {}
    with pytest.raises(SampleError, match="not handed over to the model"):
        undo(ctx, ["physical_health"])


def annotated(studio: FakeStudio) -> set[int]:
    return {task.id for task in studio.all.values() if task.annotations}


def live_ranked(ctx, version: str) -> Ranked:
    """What a round ranked, as the re-decision step takes it: the version's model and its pool."""
    saved = ctx.store.get(ctx.project, version)
    trained = Trained(ctx.store.load(saved), saved, 0.0)
    return Ranked(trained, np.zeros(0, dtype=np.int64), [], ctx.store.ranked_pool(ctx.project, version))


def test_a_newer_version_redecides_or_is_suspended_and_segments_coders_coded_drop_out(settings, served):
    ctx, studio, first = served
    autocode(ctx, ["physical_health"], Targets(0.9, 0.8))
    handed = store_of(ctx).read().codes["physical_health"]
    assert handed.handed_version == first and handed.redecided is None
    now_coded = handed.task_ids[:2]
    for task in now_coded:
        studio.annotate(task, ["physical_health"], user=2, when="2026-12-06T12:00:00")

    second = run_round(settings, studio).current_version  # no estimate of it: nothing codes the sample
    held = store_of(ctx).read().codes["physical_health"]
    assert held.suspended.startswith(f"version {second} has no estimate on the validation sample")
    assert held.redecided.held and held.redecided.version == second and held.redecided.before == first
    assert (held.redecided.gained, held.redecided.lost, held.redecided.coded) == (0, 0, 2)
    assert held.version == first and held.coded_since == 2, "the decisions that met the targets stay"
    assert sorted(held.task_ids) == sorted(set(handed.task_ids) - set(now_coded))
    assert "not re-decided at version" in held.redecided.describe()

    store_of(ctx).update(lambda kept: setattr(kept.codes["physical_health"], "decisions", [False] * 22))
    pool = ctx.store.ranked_pool(ctx.project, second)
    gained = int(pool.decisions[:, 0].sum())
    found = redecide(ctx, live_ranked(ctx, second), annotated(studio), measured(second))
    assert (found["physical_health"].gained, found["physical_health"].lost) == (gained, 0)
    redecided = store_of(ctx).read().codes["physical_health"]
    assert redecided.version == second and redecided.suspended is None and not redecided.redecided.held
    assert redecided.estimate == measured(second).codes["physical_health"]
    assert redecided.probabilities == [round(float(p), 6) for p in pool.proba[:, 0]]
    assert f"re-decided at version {second}: {gained} changed (+{gained} / −0), 0 now coded by coders" == (
        redecided.redecided.describe()
    )

    missing = measured(second)
    missing.codes["physical_health"] = missing.codes["mental_health"]  # a coin flip: below the targets
    redecide(ctx, live_ranked(ctx, second), annotated(studio), missing)
    suspended = store_of(ctx).read().codes["physical_health"]
    assert suspended.suspended.startswith(f"version {second}: precision 0.") and suspended.redecided.held


def test_undo_after_redecisions_restores_the_state_before_the_autocode_command(settings, served):
    ctx, studio, _ = served
    before = store_of(ctx).read()
    autocode(ctx, ["physical_health"], Targets(0.9, 0.8))
    studio.annotate(
        store_of(ctx).read().codes["physical_health"].task_ids[0], ["mental_health"], user=2, when="now"
    )
    second = run_round(settings, studio).current_version
    redecide(ctx, live_ranked(ctx, second), annotated(studio), measured(second))
    assert store_of(ctx).read().codes["physical_health"].version == second
    calls = len(studio.calls)

    assert undo(ctx, ["physical_health"]) == ["physical_health"]
    assert store_of(ctx).read() == before, "no code handed over, whichever versions re-decided it"
    assert studio.calls[calls:] == [], "nothing in Label Studio to take back"
    run_round(settings, studio)
    assert store_of(ctx).read().codes == {}, "a later round re-decides nothing"


def test_a_round_that_a_newer_one_follows_leaves_the_redecision_to_it(settings, served):
    from backend.queue.files import FileQueue
    from backend.queue.work import WorkKind
    from tests.fakes import RecordingQueue

    ctx, studio, first = served
    autocode(ctx, ["physical_health"], Targets(0.9, 0.8))
    before = store_of(ctx).read()
    lanes = FileQueue(settings.server.model_dir)
    waiting = project_context(studio, settings, settings.server.model_dir, RecordingQueue(lanes))
    lanes.put("1", WorkKind.TRAIN)
    assert redecide(waiting, live_ranked(ctx, first), annotated(studio), None) == {}
    assert store_of(ctx).read() == before, "not suspended for want of an estimate the next round makes"
