"""A fine-tuned body is kept only if a head on it beats one on the base body on held-out segments."""

import numpy as np
import pytest

from backend.learning.body_choice import (
    MIN_PER_CODER,
    MIN_TO_JUDGE,
    BodyVerdict,
    CoderTruth,
    CoderVerdict,
    held_out_split,
    judge_bodies,
)
from backend.learning.heads import HeadOptions

OPTIONS = HeadOptions(tune=False)


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


def test_the_body_whose_embeddings_carry_the_codes_wins():
    matrix = labels(48)
    rng = np.random.default_rng(3)
    informative = matrix * 3.0 + rng.normal(0, 0.5, matrix.shape)  # the codes, plainly
    noise = rng.normal(0, 1, (48, 3))
    split = held_out_split(matrix, seed=2)
    kept = judge_bodies(informative, noise, matrix, split, OPTIONS)
    assert kept.kept and kept.fine_tuned_f1 > 0.9 and kept.held_out == 12
    lost = judge_bodies(noise, informative, matrix, split, OPTIONS)
    assert not lost.kept and lost.base_f1 == kept.fine_tuned_f1
    tie = judge_bodies(informative, informative, matrix, split, OPTIONS)
    assert not tie.kept, "a tie keeps the base body: fine-tuning must earn its minutes"


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


def test_each_coder_is_judged_on_their_own_answers():
    """A body that decides the held-out segments exactly as labeled: F1 1 against a coder who agrees;
    against one who codes the first code the other way round, that code scores 0 and the others 1."""
    matrix = labels(48)
    rng = np.random.default_rng(3)
    plain = matrix * 3.0 + rng.normal(0, 0.1, matrix.shape)
    noise = rng.normal(0, 1, (48, 3))
    split = held_out_split(matrix, seed=2)
    agrees, differs = split.held_out[:6], split.held_out[6:]
    other_way = matrix[differs].copy()
    other_way[:, 0] = 1 - other_way[:, 0]
    few = split.held_out[: MIN_PER_CODER - 1]
    coders = {
        "a": CoderTruth(agrees, matrix[agrees]),
        "b": CoderTruth(differs, other_way),
        "c": CoderTruth(few, matrix[few]),
    }
    verdict = judge_bodies(plain, noise, matrix, split, OPTIONS, coders)
    assert verdict.fine_tuned_f1 == 1.0 and verdict.by_coder["a"] == CoderVerdict(
        1.0, verdict.by_coder["a"].base_f1, 6
    )
    present = [j for j in range(3) if other_way[:, j].any()]
    assert 0 in present and len(present) > 1
    assert verdict.by_coder["b"].fine_tuned_f1 == pytest.approx((len(present) - 1) / len(present))
    assert "c" not in verdict.by_coder, f"fewer than {MIN_PER_CODER} held-out segments: not judged alone"
    with pytest.raises(ValueError, match="held-out rows"):
        judge_bodies(plain, noise, matrix, split, OPTIONS, {"d": CoderTruth(split.train[:6], matrix[:6])})


def test_a_body_is_kept_only_if_it_wins_overall_and_loses_for_no_coder_judged():
    wins, loses, ties = CoderVerdict(0.9, 0.8, 6), CoderVerdict(0.6, 0.62, 6), CoderVerdict(1.0, 1.0, 5)
    assert BodyVerdict(0.8, 0.7, 12).kept
    assert BodyVerdict(0.8, 0.7, 12, {"a": wins, "b": wins}).kept
    assert BodyVerdict(0.8, 0.7, 12, {"a": wins, "b": ties}).kept, (
        "a tie on a coder's few segments does not block"
    )
    assert not BodyVerdict(0.8, 0.7, 12, {"a": wins, "b": loses}).kept, "it learned one coder's habits"
    assert not BodyVerdict(0.7, 0.8, 12, {"a": wins, "b": wins}).kept
