"""A fine-tuned body is kept only if a head on it beats one on the base body on held-out segments
by more than their noise (a paired bootstrap), across coders when several coded."""

import numpy as np
import pytest

from backend.learning.body_choice import (
    MIN_PER_CODER,
    MIN_TO_JUDGE,
    MIN_TRAIN_PER_CODER,
    BodyVerdict,
    CoderTruth,
    held_out_split,
    judge_bodies,
)
from backend.learning.heads import HeadOptions
from backend.learning.options import JudgeOptions

OPTIONS = JudgeOptions(HeadOptions(tune=False), resamples=500)


def labels(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrix = (rng.random((n, 3)) < [0.5, 0.3, 0.15]).astype(int)
    matrix[:4, 2] = 1  # the rare code has enough positives to stratify by
    return matrix


def test_a_quarter_is_held_out_stratified_and_too_few_segments_are_not_judged():
    assert held_out_split(labels(MIN_TO_JUDGE - 1), seed=1) is None
    matrix = labels(40)
    split = held_out_split(matrix, seed=1)
    assert len(split.held_out) == 10 and len(split.train) == 30
    assert sorted([*split.train, *split.held_out]) == list(range(40))
    assert matrix[split.held_out, 2].any(), "the rare code is held out too (stratified)"
    assert np.array_equal(held_out_split(matrix, seed=1).held_out, split.held_out), "seeded"


def test_the_body_whose_embeddings_carry_the_codes_wins_and_a_tie_keeps_the_base():
    matrix = labels(48)
    rng = np.random.default_rng(3)
    informative = matrix * 3.0 + rng.normal(0, 0.5, matrix.shape)  # the codes, plainly
    noise = rng.normal(0, 1, (48, 3))
    split = held_out_split(matrix, seed=2)
    kept = judge_bodies(informative, noise, matrix, split, OPTIONS)
    assert kept.kept and kept.fine_tuned_f1 > 0.9 and kept.held_out == 12 and kept.across_coders == 0
    assert 0 < kept.lower < kept.fine_tuned_f1 - kept.base_f1, "a lower bound below the gain itself"
    lost = judge_bodies(noise, informative, matrix, split, OPTIONS)
    assert not lost.kept and lost.base_f1 == kept.fine_tuned_f1 and lost.lower < 0
    tie = judge_bodies(informative, informative, matrix, split, OPTIONS)
    assert not tie.kept and tie.lower == 0, "a tie keeps the base body: fine-tuning must earn its minutes"


def test_a_gain_within_the_held_out_noise_keeps_the_base_body():
    """Hand-made decisions through the bootstrap: one segment decided better out of 40 is a higher
    macro-F1, but a draw without that segment shows no gain: not beyond the noise. The same gain on
    every third segment is."""
    from backend.learning.body_choice import _Comparison, _lower_bound

    truth = np.tile([[1, 0], [0, 1]], (20, 1))
    base = truth.copy()
    base[:20:3, 0] = 0  # the base head misses code 0 on every third segment of the first half
    one_better = base.copy()
    one_better[0, 0] = 1
    assert _lower_bound([_Comparison(truth, one_better, base)], OPTIONS) == 0
    assert _lower_bound([_Comparison(truth, truth, base)], OPTIONS) > 0
    assert _lower_bound([_Comparison(truth, base, truth)], OPTIONS) < -0.1


def test_many_codes_are_held_out_unstratified_and_a_tasks_rows_stay_together():
    many = np.eye(12, dtype=int)[np.arange(32) % 12]  # 12 strata, 8 held out: cannot stratify
    split = held_out_split(many, seed=1)
    assert len(split.held_out) == 8 and len(split.train) == 24
    tasks = np.repeat(np.arange(40), 2)  # two coders' rows per task (MULTI_CODER_RULE=per_coder)
    split = held_out_split(np.repeat(labels(40), 2, axis=0), seed=1, groups=tasks)
    assert len(split.held_out) == 20 and not set(tasks[split.held_out]) & set(tasks[split.train])
    assert (
        held_out_split(np.repeat(labels(31), 2, axis=0), seed=1, groups=np.repeat(np.arange(31), 2)) is None
    )


def test_with_several_coders_heads_fit_on_one_coders_codes_are_scored_on_anothers():
    """Coder a codes code 0 one way, coder b codes it unlike a (at random here); a body that learned
    a's habit (code 0 as a codes it) beside what both bodies share (codes 1 and 2) wins on a's codes
    pooled, but heads fit on one coder's codes and scored on the other's gain nothing from it: judged
    across coders it is not kept."""
    matrix = labels(48)
    rng = np.random.default_rng(3)
    shared = matrix[:, 1:] * 3.0 + rng.normal(0, 0.3, (48, 2))
    base = np.hstack([rng.normal(0, 1, (48, 1)), shared])
    habit = np.hstack([matrix[:, :1] * 3.0 + rng.normal(0, 0.3, (48, 1)), shared])
    split = held_out_split(matrix, seed=2)
    theirs = matrix.copy()
    theirs[:, 0] = np.random.default_rng(5).random(48) < 0.5
    coders = {"a": CoderTruth(np.arange(48), matrix), "b": CoderTruth(np.arange(48), theirs)}
    pooled = judge_bodies(habit, base, matrix, split, OPTIONS)
    across = judge_bodies(habit, base, matrix, split, OPTIONS, coders)
    assert pooled.kept and pooled.fine_tuned_f1 == 1.0
    assert not across.kept and across.across_coders == 2 and set(across.by_coder) == {"a", "b"}
    assert across.by_coder["a"].held_out == across.by_coder["b"].held_out == 12
    mean = np.mean([verdict.fine_tuned_f1 for verdict in across.by_coder.values()])
    assert across.fine_tuned_f1 == pytest.approx(mean) and across.fine_tuned_f1 < across.base_f1


def test_coders_with_too_few_segments_are_not_judged_apart():
    """A coder with too few training segments fits no head, one with too few held-out ones is not
    tested on; without a pair of coders left the verdict is the pooled one. Rows off the split fail."""
    matrix = labels(48)
    rng = np.random.default_rng(3)
    plain = matrix * 3.0 + rng.normal(0, 0.3, matrix.shape)
    noise = rng.normal(0, 1, (48, 3))
    split = held_out_split(matrix, seed=2)
    few = np.concatenate([split.train[: MIN_TRAIN_PER_CODER - 1], split.held_out[: MIN_PER_CODER - 1]])
    coders = {"a": CoderTruth(np.arange(48), matrix), "c": CoderTruth(few, matrix[few])}
    verdict = judge_bodies(plain, noise, matrix, split, OPTIONS, coders)
    assert verdict.across_coders == 0 and verdict.by_coder == {}
    assert verdict == judge_bodies(plain, noise, matrix, split, OPTIONS)
    enough = np.concatenate([split.train[:MIN_TRAIN_PER_CODER], split.held_out[:MIN_PER_CODER]])
    coders["c"] = CoderTruth(enough, matrix[enough])
    verdict = judge_bodies(plain, noise, matrix, split, OPTIONS, coders)
    assert verdict.across_coders == 2 and verdict.by_coder["c"].held_out == MIN_PER_CODER
    with pytest.raises(ValueError, match="rows of the split"):
        judge_bodies(plain, noise, matrix, split, OPTIONS, {"d": CoderTruth(np.array([99]), matrix[:1])})


def test_a_body_is_kept_only_if_the_lower_bound_of_its_gain_is_above_zero():
    assert BodyVerdict(0.8, 0.7, 12, 0.01).kept
    assert not BodyVerdict(0.8, 0.7, 12, -0.02).kept, "higher, but within the held-out noise"
    assert not BodyVerdict(0.7, 0.7, 12, 0.0).kept
