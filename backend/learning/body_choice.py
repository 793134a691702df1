"""Does a fine-tuned body earn its place? Judged on segments its fine-tuning never saw.

With few labels, contrastive fine-tuning may learn one coder's habits rather than the codes: on the
study's data a head on the *base* body's embeddings did as well or better from 30 labeled on
(docs/results.md). A body fine-tuned on all labels cannot be judged fairly by cross-validation on
those labels (it has seen every fold), so the body lane holds out a share of the segments,
fine-tunes on the rest, fits the same head on both bodies' embeddings of the rest, and keeps the
fine-tuned body only if its head scores a higher macro-F1 on the held-out segments than the base
body's. Below `MIN_TO_JUDGE` segments the held-out share is too small to tell, and the body is
fine-tuned on everything, unjudged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

from backend.learning.heads import HeadOptions
from backend.learning.setfit_model import refit_head

HELD_OUT_SHARE = 0.25
MIN_TO_JUDGE = 32  # at least 8 held out, 24 to fine-tune on


@dataclass(frozen=True)
class HeldOut:
    """Positions of the segments to fine-tune on and of those held out."""

    train: np.ndarray
    held_out: np.ndarray


@dataclass(frozen=True)
class BodyVerdict:
    """The held-out macro-F1 of a head on each body, over the codes with held-out positives."""

    fine_tuned_f1: float
    base_f1: float
    held_out: int

    @property
    def kept(self) -> bool:
        return self.fine_tuned_f1 > self.base_f1


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
    fine_tuned: np.ndarray, base: np.ndarray, matrix: np.ndarray, split: HeldOut, options: HeadOptions
) -> BodyVerdict:
    """Compare heads fit on each body's embeddings of `split.train` (rows of `fine_tuned` and `base`
    are the segments of `matrix`) on the held-out segments."""
    matrix = np.asarray(matrix, dtype=np.int64)
    return BodyVerdict(
        _held_out_f1(fine_tuned, matrix, split, options),
        _held_out_f1(base, matrix, split, options),
        len(split.held_out),
    )


def _held_out_f1(embeddings: np.ndarray, matrix: np.ndarray, split: HeldOut, options: HeadOptions) -> float:
    codes = [str(j) for j in range(matrix.shape[1])]
    head = refit_head("", 0, embeddings[split.train], matrix[split.train], codes, options)
    truth = matrix[split.held_out]
    decided = head.decide(head.head_proba(embeddings[split.held_out]))
    present = [j for j in range(matrix.shape[1]) if truth[:, j].any()]
    if not present:
        return 0.0
    return float(f1_score(truth, decided, labels=present, average="macro", zero_division=0))
