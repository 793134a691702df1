"""TF-IDF + logistic regression: the cheap baseline every model of the backend must beat.

It has the same interface as the backend's models and the same head, class weights and per-code
thresholds as the SetFit model, so in a simulation its own probabilities drive the query strategy
and only the features differ. It is never served, so it cannot be saved.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.multiclass import OneVsRestClassifier

from backend.learning.base import CodingModel
from backend.learning.heads import HeadOptions, duplicate_groups, fit_head, head_thresholds

if TYPE_CHECKING:
    from backend.config import ModelSettings


def tfidf_vectorizer() -> TfidfVectorizer:
    """Word 1–2-grams with sublinear term frequency: a strong bag-of-words for short answers."""
    return TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1)


class TfidfCodingModel(CodingModel):
    """TF-IDF features and a one-vs-rest logistic-regression head."""

    kind = "tfidf"

    def __init__(self, vectorizer: TfidfVectorizer, head: OneVsRestClassifier, codes, thresholds):
        super().__init__(codes, thresholds)
        self.vectorizer = vectorizer
        self.head = head

    def _proba(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.head.predict_proba(self.vectorizer.transform(texts)), dtype=np.float64)

    def _save_weights(self, directory: Path) -> None:
        raise NotImplementedError("the TF-IDF baseline exists for simulations only and is never saved")


def train_tfidf(
    texts: list[str], label_matrix: np.ndarray, codes: list[str], settings: ModelSettings, show_progress: bool
) -> TfidfCodingModel:
    """Fit the vectorizer and head on the labeled texts; thresholds as the SetFit head gets them. The
    baseline's head is always one-vs-rest logistic regression (CLASSIFIER_HEAD is SetFit's)."""
    options = replace(HeadOptions.of(settings), kind="logistic")
    vectorizer = tfidf_vectorizer()
    features = vectorizer.fit_transform(texts)
    head = fit_head(features, label_matrix, options)
    thresholds = head_thresholds(features, label_matrix, options, duplicate_groups(texts))
    return TfidfCodingModel(vectorizer, head, codes, thresholds)
