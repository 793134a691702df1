"""Handing codes over to the model: the refusal rule on the validation estimates, the decisions kept
with their provenance outside Label Studio, and `--undo`."""

import numpy as np
import pytest

from backend.learning.validation import Corpus, Sample, estimate_codes
from backend.storage.validation import Estimates, ValidationSample
from backend.worker.autocode import Targets, autocode, store_of, undo
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
