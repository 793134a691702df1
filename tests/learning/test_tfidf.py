"""The TF-IDF + logistic-regression baseline: same interface and head options as the backend's models."""

import numpy as np
import pytest

from backend.config import with_overrides
from backend.learning.base import TrainingDataError
from backend.learning.factories import ModelFactory
from tests.helpers import CODES


def train_tfidf(texts, labels, codes, settings):
    return ModelFactory(settings.model.model_options("tfidf")).train(texts, labels, codes)


def test_the_baseline_learns_the_fixture_codes(tiny_settings, texts, labels):
    model = train_tfidf(texts, labels, CODES, with_overrides(tiny_settings, tune_thresholds=False))
    with_blank = model.predict_proba([*texts, "  "])
    assert with_blank.shape == (len(texts) + 1, len(CODES)) and not with_blank[-1].any()  # blank: no code
    proba = with_blank[:-1]
    for j, code in enumerate(CODES):
        assert proba[labels[:, j] == 1, j].mean() > proba[labels[:, j] == 0, j].mean(), code
    assert (model.thresholds == 0.5).all()


def test_the_baseline_tunes_thresholds_like_the_setfit_head(tiny_settings, texts, labels):
    model = train_tfidf(texts, labels, CODES, tiny_settings)
    assert model.thresholds.shape == (len(CODES),) and not np.all(model.thresholds == 0.5)


def test_the_baseline_refuses_unusable_data(tiny_settings):
    with pytest.raises(TrainingDataError, match="empty or whitespace"):
        train_tfidf(["fine", " "], np.zeros((2, len(CODES))), CODES, tiny_settings)


def test_the_base_embeddings_sit_beside_the_tfidf_words(tiny_settings, texts, labels):
    """kind tfidf-embeddings: each row is the segment's TF-IDF row, then its base-body embedding scaled to
    unit length (the body is never fine-tuned), and one head learns from both."""
    from sklearn.preprocessing import normalize

    from backend.learning.setfit_model import base_model

    model = ModelFactory(tiny_settings.model.model_options("tfidf-embeddings")).train(texts, labels, CODES)
    assert model.kind == "tfidf-embeddings"
    features = model.features(texts[:4]).toarray()
    words = len(model.features.vectorizer.vocabulary_)
    embedding = base_model(CODES, tiny_settings.model.encoder_options()).embed(texts[:4])
    assert features.shape == (4, words + embedding.shape[1])
    np.testing.assert_allclose(features[:, :words], model.features.vectorizer.transform(texts[:4]).toarray())
    np.testing.assert_allclose(features[:, words:], normalize(embedding), atol=1e-5)
    assert np.linalg.norm(features[:, words:], axis=1) == pytest.approx(1, abs=1e-5)
    proba = model.predict_proba(texts)
    for j, code in enumerate(CODES):
        assert proba[labels[:, j] == 1, j].mean() > proba[labels[:, j] == 0, j].mean(), code
