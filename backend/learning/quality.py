"""Per-code quality a project lead watches: label counts, rare codes, cross-validated figures.

These say which codes the model cannot learn yet and how well it does per code (`/metrics`, the
logs and MLflow).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from backend.learning.heads import out_of_fold_probas
from backend.learning.options import HeadOptions

CV_METHOD = (
    "out-of-fold predictions of a fresh head of the model's kind (k-fold, k <= 5, stratified per code "
    "for per-code logistic heads and by each segment's rarest code for chains; a task's rows in one "
    "fold) on the round's body's embeddings of the labeled segments, at the model's thresholds; "
    "optimistic when the body was fine-tuned on the same segments (the thresholds were, too)"
)


def label_counts(matrix: np.ndarray, codes: Sequence[str]) -> dict[str, int]:
    """Positives per code among the labeled examples."""
    counts = matrix.sum(axis=0) if len(matrix) else np.zeros(len(codes))
    return {code: int(n) for code, n in zip(codes, counts, strict=True)}


def rare_codes(matrix: np.ndarray, codes: Sequence[str], minimum: int) -> dict[str, int]:
    """Codes with fewer than `minimum` positives (MIN_POSITIVES_PER_CODE), with their count."""
    return {code: n for code, n in label_counts(matrix, codes).items() if n < minimum}


def out_of_fold_decisions(
    embeddings: np.ndarray,
    matrix: np.ndarray,
    thresholds: np.ndarray,
    options: HeadOptions,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Each labeled row's code decisions (1/0) from heads that did not see its segment (see
    CV_METHOD); NaN for a code with fewer than two positives or negatives: no estimate is possible.

    They are both the quality estimate's predictions and the model's answers as a coder."""
    decisions = np.full(matrix.shape, np.nan)
    for j, proba in enumerate(out_of_fold_probas(embeddings, matrix, options, groups)):
        if proba is not None:
            decisions[:, j] = proba >= thresholds[j]
    return decisions


def cross_validated_report(
    matrix: np.ndarray, decisions: np.ndarray, codes: Sequence[str], thresholds: np.ndarray | None = None
) -> dict:
    """Per-code and macro precision/recall/F1 of out-of-fold decisions against the labels, with the
    threshold each code's decisions were taken at (the model's, shown on the status page).

    Codes without decisions (NaN) get None.
    """
    per_code = {}
    for j, code in enumerate(codes):
        target = matrix[:, j]
        figures = {"precision": None, "recall": None, "f1": None, "positives": int(target.sum())}
        if thresholds is not None:
            figures["threshold"] = float(thresholds[j])
        if not np.isnan(decisions[:, j]).any():
            precision, recall, f1, _ = precision_recall_fscore_support(
                target, decisions[:, j].astype(int), average="binary", zero_division=0
            )
            figures.update(precision=float(precision), recall=float(recall), f1=float(f1))
        per_code[code] = figures
    estimated = [figures for figures in per_code.values() if figures["f1"] is not None]
    macro = {
        name: float(np.mean([figures[name] for figures in estimated])) if estimated else None
        for name in ("precision", "recall", "f1")
    }
    return {
        "method": CV_METHOD,
        "labeled": len(matrix),
        "codes": per_code,
        "macro": macro,
        "codes_estimated": len(estimated),
    }
