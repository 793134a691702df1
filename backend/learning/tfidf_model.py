"""TF-IDF + logistic regression: the cheap baseline every model of the backend must beat, and the
same with the base body's sentence embeddings beside the TF-IDF (lexical + semantic features).

Both have the same interface as the backend's models and the same head, class weights and per-code
thresholds as the SetFit model, so in a simulation their own probabilities drive the query strategy
and only the features differ. They exist for simulations and are never saved.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.multiclass import OneVsRestClassifier

from backend.learning.base import CodingModel
from backend.learning.features import beside, tfidf_vectorizer
from backend.learning.heads import duplicate_groups, fit_head, head_thresholds
from backend.learning.options import HeadOptions, ModelOptions
from backend.learning.setfit_model import SetFitCodingModel, base_model


class LexicalFeatures:
    """A segment's TF-IDF row, and with a body its sentence embedding beside it (learning/features.py:
    the live loop's FEATURES=tfidf+embeddings joins them the same way)."""

    def __init__(self, vectorizer: TfidfVectorizer, body: SetFitCodingModel | None = None):
        self.vectorizer, self.body = vectorizer, body

    def __call__(self, texts: list[str]) -> sparse.csr_matrix:
        lexical = self.vectorizer.transform(texts)
        if self.body is None:
            return lexical
        return beside(lexical, self.body.embed(texts))


class TfidfCodingModel(CodingModel):
    """TF-IDF features (kind ``tfidf``), or TF-IDF beside a body's embeddings (``tfidf-embeddings``),
    and a one-vs-rest logistic-regression head."""

    def __init__(self, features: LexicalFeatures, head: OneVsRestClassifier, codes, thresholds):
        super().__init__(codes, thresholds)
        self.features, self.head = features, head
        self.kind = "tfidf" if features.body is None else "tfidf-embeddings"

    def _proba(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.head.predict_proba(self.features(texts)), dtype=np.float64)

    def _save_weights(self, directory: Path) -> None:
        raise NotImplementedError("the TF-IDF baselines exist for simulations only and are never saved")


def train_tfidf(
    texts: list[str], label_matrix: np.ndarray, codes: list[str], options: ModelOptions, show_progress: bool
) -> TfidfCodingModel:
    """Fit the vectorizer and head on the labeled texts; thresholds as the SetFit head gets them. The
    baseline's head is always one-vs-rest logistic regression (CLASSIFIER_HEAD is SetFit's)."""
    features = LexicalFeatures(tfidf_vectorizer().fit(texts))
    return _with_head(features, texts, label_matrix, codes, options.head)


def train_tfidf_embeddings(
    texts: list[str], label_matrix: np.ndarray, codes: list[str], options: ModelOptions, show_progress: bool
) -> TfidfCodingModel:
    """As :func:`train_tfidf`, with MODEL_NAME's base body (never fine-tuned) embedding each segment
    beside its TF-IDF row: does meaning add to the words where the labels are few (issue 20 item 6)?"""
    features = LexicalFeatures(tfidf_vectorizer().fit(texts), base_model(codes, options.encoder))
    return _with_head(features, texts, label_matrix, codes, options.head)


def _with_head(
    features: LexicalFeatures,
    texts: list[str],
    label_matrix: np.ndarray,
    codes: list[str],
    head: HeadOptions,
) -> TfidfCodingModel:
    options = replace(head, kind="logistic")
    matrix = features(texts)
    head = fit_head(matrix, label_matrix, options)
    thresholds = head_thresholds(matrix, label_matrix, options, duplicate_groups(texts))
    return TfidfCodingModel(features, head, codes, thresholds)
