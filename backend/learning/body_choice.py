"""Does a fine-tuned body earn its place? Judged on segments its fine-tuning never saw.

With few labels, contrastive fine-tuning may learn one coder's habits rather than the codes: on the
study's data a head on the *base* body's embeddings did as well or better from 30 labeled on
(docs/results.md). A body fine-tuned on all labels cannot be judged fairly by cross-validation on
those labels (it has seen every fold), so the body lane holds out a share of the segments,
fine-tunes on the rest, fits the same head on both bodies' embeddings of the rest, and keeps the
fine-tuned body only if its head scores a higher macro-F1 on the held-out segments than the base
body's. Below `MIN_TO_JUDGE` segments the held-out share is too small to tell, and the body is
fine-tuned on everything, unjudged.

When several coders coded the held-out segments, the body must also not lose on any coder's own
answers (those with at least `MIN_PER_CODER` held-out segments): a body that learned one coder's
habits scores higher on that coder's segments and lower on the next coder's, and is not kept. A tie
on one coder's few segments (both heads right on all of them) does not block it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

from backend.learning.options import HeadOptions
from backend.learning.setfit_model import refit_head

HELD_OUT_SHARE = 0.25
MIN_TO_JUDGE = 32  # at least 8 held out, 24 to fine-tune on
MIN_PER_CODER = 5  # held-out segments of one coder's for a verdict on that coder's answers


@dataclass(frozen=True)
class HeldOut:
    """Positions of the segments to fine-tune on and of those held out."""

    train: np.ndarray
    held_out: np.ndarray


@dataclass(frozen=True)
class CoderTruth:
    """One coder's own answers on held-out segments: rows of the labeled set (one per segment) and
    the coder's codes there (segments × codes)."""

    rows: np.ndarray
    matrix: np.ndarray


@dataclass(frozen=True)
class CoderVerdict:
    """The held-out macro-F1 of a head on each body, against one coder's answers."""

    fine_tuned_f1: float
    base_f1: float
    held_out: int


@dataclass(frozen=True)
class BodyVerdict:
    """The held-out macro-F1 of a head on each body, over the codes with held-out positives, and
    per coder when several coded the held-out segments."""

    fine_tuned_f1: float
    base_f1: float
    held_out: int
    by_coder: Mapping[str, CoderVerdict] = field(default_factory=dict)

    @property
    def kept(self) -> bool:
        """Higher on the held-out segments, and lower on no judged coder's own answers."""
        return self.fine_tuned_f1 > self.base_f1 and all(
            coder.fine_tuned_f1 >= coder.base_f1 for coder in self.by_coder.values()
        )


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
    options: HeadOptions,
    coders: Mapping[str, CoderTruth] | None = None,
) -> BodyVerdict:
    """Compare heads fit on each body's embeddings of `split.train` (rows of `fine_tuned` and `base`
    are the segments of `matrix`) on the held-out segments, and on each coder's answers there
    (`coders`, for a project with several; those with fewer than `MIN_PER_CODER` are not judged)."""
    matrix = np.asarray(matrix, dtype=np.int64)
    tuned = _held_out_decisions(fine_tuned, matrix, split, options)
    on_base = _held_out_decisions(base, matrix, split, options)
    truth = matrix[split.held_out]
    by_coder = {}
    for name, coder in (coders or {}).items():
        if len(coder.rows) < MIN_PER_CODER or not np.asarray(coder.matrix).any():
            continue
        if not np.isin(coder.rows, split.held_out).all():
            raise ValueError("a coder's rows must be held-out rows")
        at = np.searchsorted(split.held_out, coder.rows)
        by_coder[name] = CoderVerdict(
            _macro_f1(coder.matrix, tuned[at]), _macro_f1(coder.matrix, on_base[at]), len(coder.rows)
        )
    return BodyVerdict(_macro_f1(truth, tuned), _macro_f1(truth, on_base), len(split.held_out), by_coder)


def _held_out_decisions(
    embeddings: np.ndarray, matrix: np.ndarray, split: HeldOut, options: HeadOptions
) -> np.ndarray:
    """A head fit on the training rows' embeddings decides the held-out rows (in `split.held_out`'s order)."""
    codes = [str(j) for j in range(matrix.shape[1])]
    head = refit_head("", 0, embeddings[split.train], matrix[split.train], codes, options)
    return head.decide(head.head_proba(embeddings[split.held_out]))


def _macro_f1(truth: np.ndarray, decided: np.ndarray) -> float:
    """Macro-F1 over the codes with positives in `truth` (0 when it has none)."""
    truth = np.asarray(truth, dtype=np.int64)
    present = [j for j in range(truth.shape[1]) if truth[:, j].any()]
    if not present:
        return 0.0
    return float(f1_score(truth, decided, labels=present, average="macro", zero_division=0))
