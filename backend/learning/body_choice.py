"""Does a fine-tuned body earn its place? Judged on segments its fine-tuning never saw, by a margin
beyond their noise, and across coders when there are several.

With few labels, contrastive fine-tuning may learn one coder's habits rather than the codes: on the
study's data a head on the *base* body's embeddings did as well or better from 30 labeled on
(docs/results.md), and across coders the fine-tuned default lost to the base body on every seed
(issue 38). A body fine-tuned on all labels cannot be judged fairly by cross-validation on those
labels (it has seen every fold), so the body lane holds out a share of the segments, fine-tunes on
the rest, and fits the same head on both bodies' embeddings of the rest. Below `MIN_TO_JUDGE`
segments the held-out share is too small to tell, and the body is fine-tuned on everything, unjudged.

What is compared is the fine-tuned head's macro-F1 minus the base head's on the same held-out
segments. With one coder (or coders too few to judge apart) the heads are fit on the training share
and scored on the held-out share. With several coders the heads are fit on one coder's own answers
on the training share and scored against *another* coder's answers on the held-out share, for every
ordered pair of coders with enough segments (`MIN_TRAIN_PER_CODER`, `MIN_PER_CODER`), and the gains
are averaged over the pairs: a body that learned one coder's habits does not carry them to the next.
The body is kept only when the gain is above 0 beyond the noise of so few segments: the lower bound
of a one-sided 95 % percentile interval of a paired bootstrap (scipy.stats.bootstrap; the held-out
segments of each pair drawn again with replacement, both heads scored on the same draw) must be
above 0. A tie, or a gain the bootstrap cannot tell from none, keeps the base body.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from sklearn.model_selection import train_test_split

from backend.learning.options import HeadOptions, JudgeOptions
from backend.learning.setfit_model import refit_head

HELD_OUT_SHARE = 0.25
MIN_TO_JUDGE = 32  # at least 8 held out, 24 to fine-tune on
MIN_PER_CODER = 5  # held-out segments of one coder's to test heads on
MIN_TRAIN_PER_CODER = 12  # training segments of one coder's to fit heads on


@dataclass(frozen=True)
class HeldOut:
    """Positions of the segments to fine-tune on and of those held out."""

    train: np.ndarray
    held_out: np.ndarray


@dataclass(frozen=True)
class CoderTruth:
    """One coder's own answers: rows of the labeled set (one per segment the coder coded, on either
    side of the split) and the coder's codes there (segments × codes)."""

    rows: np.ndarray
    matrix: np.ndarray


@dataclass(frozen=True)
class CoderVerdict:
    """Macro-F1 of heads on each body against one coder's held-out answers, the heads fit on the
    other coders' answers (mean over those coders)."""

    fine_tuned_f1: float
    base_f1: float
    held_out: int


@dataclass(frozen=True)
class BodyVerdict:
    """Held-out macro-F1 of a head on each body (means over the coder pairs when judged across
    coders), the one-sided lower bound of the gain (fine-tuned − base), the number of coder pairs
    judged (0: one pool of held-out segments) and the figures per coder tested on."""

    fine_tuned_f1: float
    base_f1: float
    held_out: int
    lower: float
    across_coders: int = 0
    by_coder: Mapping[str, CoderVerdict] = field(default_factory=dict)

    @property
    def kept(self) -> bool:
        """The gain is above 0 beyond the held-out noise."""
        return self.lower > 0


@dataclass(frozen=True)
class _Comparison:
    """Both heads' decisions on one set of test segments, and the truth there."""

    truth: np.ndarray
    tuned: np.ndarray
    base: np.ndarray


def held_out_split(matrix: np.ndarray, seed: int, groups: Sequence[object] | None = None) -> HeldOut | None:
    """A quarter of the segments held out, the rows of a group (a task coded by several coders,
    MULTI_CODER_RULE=per_coder) on one side; stratified by each group's rarest code when every
    stratum has two groups and there are fewer strata than groups on either side. None when there
    are too few to judge a body."""
    matrix = np.asarray(matrix)
    groups = np.asarray(groups if groups is not None else np.arange(len(matrix)))
    names, first_row = np.unique(groups, return_index=True)
    if len(names) < MIN_TO_JUDGE:
        return None
    counts = matrix.sum(axis=0)
    rarest = np.array([_rarest(matrix[row], counts) for row in first_row])
    held_count = int(np.ceil(HELD_OUT_SHARE * len(names)))
    strata, sizes = np.unique(rarest, return_counts=True)
    stratify = (
        rarest if sizes.min() >= 2 and len(strata) <= min(held_count, len(names) - held_count) else None
    )
    _, held_names = train_test_split(names, test_size=held_count, random_state=seed, stratify=stratify)
    held = np.isin(groups, held_names)
    return HeldOut(np.flatnonzero(~held), np.flatnonzero(held))


def _rarest(row: np.ndarray, counts: np.ndarray) -> int:
    """The position of the row's least frequent code (-1 for a row without codes)."""
    return int(np.argmin(np.where(row > 0, counts, np.inf))) if row.any() else -1


def judge_bodies(
    fine_tuned: np.ndarray,
    base: np.ndarray,
    matrix: np.ndarray,
    split: HeldOut,
    options: JudgeOptions,
    coders: Mapping[str, CoderTruth] | None = None,
) -> BodyVerdict:
    """Compare heads on each body's embeddings (rows of `fine_tuned` and `base` are the segments of
    `matrix`): across coders when two or more in `coders` have enough segments on each side, else
    fit on `split.train` and scored on `split.held_out`."""
    by_coder, pairs = _across_coders(fine_tuned, base, split, options.head, coders or {})
    comparisons = [pair for tested in pairs.values() for pair in tested]
    if not comparisons:
        matrix = np.asarray(matrix, dtype=np.int64)
        train, held = (split.train, matrix[split.train]), (split.held_out, matrix[split.held_out])
        comparisons = _compared(fine_tuned, base, train, [held], options.head)
    tuned = float(np.mean([_macro_f1(c.truth, c.tuned) for c in comparisons]))
    on_base = float(np.mean([_macro_f1(c.truth, c.base) for c in comparisons]))
    lower = _lower_bound(comparisons, options)
    return BodyVerdict(tuned, on_base, len(split.held_out), lower, len(comparisons) if pairs else 0, by_coder)


def _across_coders(
    fine_tuned: np.ndarray,
    base: np.ndarray,
    split: HeldOut,
    head: HeadOptions,
    coders: Mapping[str, CoderTruth],
) -> tuple[dict[str, CoderVerdict], dict[str, list[_Comparison]]]:
    """For each coder tested on (enough held-out answers), the comparisons of heads fit on each other
    coder's training answers (enough of them), and the mean figures; empty without such a pair."""
    trainers, testers = {}, {}
    for name, coder in coders.items():
        rows, matrix = np.asarray(coder.rows), np.asarray(coder.matrix, dtype=np.int64)
        on_train, on_held = np.isin(rows, split.train), np.isin(rows, split.held_out)
        if not (on_train | on_held).all():
            raise ValueError("a coder's rows must be rows of the split")
        if on_train.sum() >= MIN_TRAIN_PER_CODER:
            trainers[name] = (rows[on_train], matrix[on_train])
        if on_held.sum() >= MIN_PER_CODER and matrix[on_held].any():
            testers[name] = (rows[on_held], matrix[on_held])
    pairs: dict[str, list[_Comparison]] = {name: [] for name in testers}
    for trainer in trainers:
        tested = [name for name in testers if name != trainer]
        compared = _compared(fine_tuned, base, trainers[trainer], [testers[t] for t in tested], head)
        for name, comparison in zip(tested, compared, strict=True):
            pairs[name].append(comparison)
    pairs = {name: tested for name, tested in pairs.items() if tested}
    by_coder = {
        name: CoderVerdict(
            float(np.mean([_macro_f1(c.truth, c.tuned) for c in tested])),
            float(np.mean([_macro_f1(c.truth, c.base) for c in tested])),
            len(testers[name][0]),
        )
        for name, tested in pairs.items()
    }
    return by_coder, pairs


def _compared(
    fine_tuned: np.ndarray,
    base: np.ndarray,
    train: tuple[np.ndarray, np.ndarray],
    tests: Sequence[tuple[np.ndarray, np.ndarray]],
    head: HeadOptions,
) -> list[_Comparison]:
    """Heads fit on each body's embeddings of the `train` rows (with their codes), deciding each of
    the `tests`' rows (scored against their codes)."""
    (rows, matrix), codes = train, [str(j) for j in range(np.shape(train[1])[1])]
    bodies = (fine_tuned, base)
    heads = [refit_head("", 0, embeddings[rows], matrix, codes, head) for embeddings in bodies]
    compared = []
    for at, truth in tests:
        tuned, on_base = (h.decide(h.head_proba(e[at])) for h, e in zip(heads, bodies, strict=True))
        compared.append(_Comparison(np.asarray(truth, dtype=np.int64), tuned, on_base))
    return compared


def _lower_bound(comparisons: Sequence[_Comparison], options: JudgeOptions) -> float:
    """The lower bound of a one-sided percentile interval of the mean gain over the comparisons,
    each comparison's segments drawn again independently, both heads scored on the same draw."""

    def gain(*drawn: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(
            [
                _macro_f1(c.truth, c.tuned, at.astype(np.int64))
                - _macro_f1(c.truth, c.base, at.astype(np.int64))
                for c, at in zip(comparisons, drawn, strict=True)
            ],
            axis=0,
        )

    segments = tuple(np.arange(len(c.truth)) for c in comparisons)
    with warnings.catch_warnings():  # a draw where both heads agree everywhere is no error
        warnings.simplefilter("ignore")
        result = stats.bootstrap(
            segments,
            gain,
            n_resamples=options.resamples,
            batch=200,
            vectorized=True,
            confidence_level=options.confidence,
            alternative="greater",
            method="percentile",
            rng=np.random.default_rng(options.head.seed),
        )
    return float(result.confidence_interval.low)


def _macro_f1(truth: np.ndarray, decided: np.ndarray, at: np.ndarray | None = None) -> np.ndarray:
    """Macro-F1 over the codes with positives in `truth` (0 when it has none), of the rows `at`: an
    index array of any leading shape (bootstrap draws) gives one figure per draw."""
    truth, decided = np.asarray(truth, dtype=bool), np.asarray(decided, dtype=bool)
    if at is not None:
        truth, decided = truth[at], decided[at]
    hits = (truth & decided).sum(axis=-2)
    wrong = (truth ^ decided).sum(axis=-2)
    f1 = np.divide(2 * hits, 2 * hits + wrong, out=np.zeros(hits.shape), where=(2 * hits + wrong) > 0)
    present = truth.any(axis=-2)
    counted = present.sum(axis=-1)
    return np.divide((f1 * present).sum(axis=-1), counted, out=np.zeros(counted.shape), where=counted > 0)
