"""The logistic-regression head on fixed features, and per-code thresholds chosen by cross-validation.

SetFit fits this head after the body; the fast loop refits it alone on a body's cached
embeddings, the TF-IDF baseline on its own features, and the quality estimate trains fresh ones
per fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict
from sklearn.multiclass import OneVsRestClassifier

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)
MIN_EXAMPLES_PER_SIDE_FOR_TUNING = 4


@dataclass(frozen=True)
class HeadOptions:
    """What the head and its thresholds depend on: CLASS_WEIGHT, PREDICTION_THRESHOLD, TUNE_THRESHOLDS
    and SEED."""

    class_weight: str = "balanced"
    default_threshold: float = 0.5
    tune: bool = True
    seed: int = 42

    @classmethod
    def of(cls, settings) -> HeadOptions:
        """The options of model settings (anything with those four attributes)."""
        return cls(
            settings.class_weight, settings.prediction_threshold, settings.tune_thresholds, settings.seed
        )

    def params(self) -> dict:
        """Options of each code's logistic regression (also handed to setfit for its own head)."""
        params: dict = {"max_iter": 1000}
        if self.class_weight == "balanced":
            params["class_weight"] = "balanced"
        return params

    def logistic_regression(self) -> LogisticRegression:
        """One binary model per code: balanced class weights unless CLASS_WEIGHT=none."""
        return LogisticRegression(**self.params())

    def default_thresholds(self, num_codes: int) -> np.ndarray:
        return np.full(num_codes, self.default_threshold)


def fit_logistic_head(features, label_matrix: np.ndarray, options: HeadOptions) -> OneVsRestClassifier:
    """One logistic regression per code on fixed features (embeddings or TF-IDF)."""
    return OneVsRestClassifier(options.logistic_regression()).fit(features, label_matrix)


def head_thresholds(features, label_matrix: np.ndarray, options: HeadOptions) -> np.ndarray:
    """Tuned thresholds when TUNE_THRESHOLDS is on, else the default for every code."""
    if options.tune:
        return tune_thresholds(features, label_matrix, options)
    return options.default_thresholds(label_matrix.shape[1])


def out_of_fold_proba(
    features, target: np.ndarray, options: HeadOptions, groups: np.ndarray | None = None
) -> np.ndarray | None:
    """P(code) for each labeled segment from a fresh logistic head that did not see it.

    Stratified k-fold (k ≤ 5, at most the size of the smaller side); None when either side has
    fewer than two segments, so no fold could hold both. Rows that share a group (one task's
    answers under MULTI_CODER_RULE=per_coder) stay in one fold, so no head sees the segment it
    predicts through another coder's row.
    """
    smaller_side = int(min(target.sum(), len(target) - target.sum()))
    if smaller_side < 2:
        return None
    splits = min(5, smaller_side)
    head = options.logistic_regression()
    if groups is None or len(np.unique(groups)) == len(groups):
        folds = StratifiedKFold(n_splits=splits, shuffle=True, random_state=options.seed)
        return cross_val_predict(head, features, target, cv=folds, method="predict_proba")[:, 1]
    splits = min(splits, _groups_on_smaller_side(target, groups))
    if splits < 2:
        return None
    folds = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=options.seed)
    try:
        proba = cross_val_predict(head, features, target, groups=groups, cv=folds, method="predict_proba")
    except ValueError:  # a training fold left with one side only: the groups are too uneven to split
        return None
    return proba[:, 1]


def _groups_on_smaller_side(target: np.ndarray, groups: np.ndarray) -> int:
    """How many groups hold a positive, or a negative, whichever is fewer."""
    return min(len(np.unique(groups[target == 1])), len(np.unique(groups[target == 0])))


def tune_thresholds(features, label_matrix: np.ndarray, options: HeadOptions) -> np.ndarray:
    """Per-code decision thresholds that maximise out-of-fold F1 of the logistic head.

    For each code, the threshold on the grid 0.05…0.95 with the best out-of-fold F1 wins (ties go
    to the one nearest the default). Codes with fewer than four positives or negatives keep the
    default threshold: too few examples to choose anything better than chance. The body has
    seen these segments in training, so the estimate is optimistic; it still moves rare codes'
    thresholds in the right direction (see docs/benchmarks.md).
    """
    default = options.default_threshold
    thresholds = options.default_thresholds(label_matrix.shape[1])
    for code in range(label_matrix.shape[1]):
        target = label_matrix[:, code]
        if min(target.sum(), len(target) - target.sum()) < MIN_EXAMPLES_PER_SIDE_FOR_TUNING:
            continue
        proba = out_of_fold_proba(features, target, options)
        scores = [f1_score(target, proba >= t, zero_division=0) for t in THRESHOLD_GRID]
        best = max(scores)
        candidates = THRESHOLD_GRID[np.isclose(scores, best)]
        thresholds[code] = float(candidates[np.argmin(np.abs(candidates - default))])
    return thresholds
