"""The TF-IDF + logistic-regression baseline: same interface and head options as the backend's models."""

import numpy as np
import pytest

from backend.config import with_overrides
from backend.learning.base import TrainingDataError
from backend.learning.factories import ModelFactory
from tests.helpers import CODES


def train_tfidf(texts, labels, codes, settings):
    return ModelFactory(settings.model, kind="tfidf").new(texts, labels, codes)


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
