"""The fast loop's fitter: a head refit on the current body's cached embeddings; seconds, where
fine-tuning a body takes minutes (jobs/body.py does that in the background lane).

Its round (jobs/training.py) takes the labels from the worker's last full read plus the annotations
webhooks brought since (worker/labels.py); once its queue head is written, a full read reconciles,
and asks for another round if Label Studio holds labels the webhooks did not bring. With
FEATURES=tfidf+embeddings the head also sees the project's lexicon's TF-IDF rows (storage/lexicon.py).
What it reads of the pool is gathered once per listing and body (worker/pool_features.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

import numpy as np

from backend.learning.heads import HeadOptions
from backend.learning.setfit_model import RefittedHead, refit_lexical_head
from backend.worker.bodies import Bodies, Body
from backend.worker.context import ProjectContext
from backend.worker.jobs.training import Fitted
from backend.worker.labels import ProjectLabels
from backend.worker.pool_features import PoolFeaturesKeeper
from backend.worker.ranking import Scored


@dataclass(frozen=True)
class HeadFitter:
    ctx: ProjectContext
    head_options: HeadOptions
    bodies: Bodies
    pool_features: PoolFeaturesKeeper

    def fit(self, labels: ProjectLabels) -> Fitted:
        """A head on the current body's embeddings, and its probabilities for the unlabeled tasks."""
        labeled, scheme = labels.labeled, labels.scheme
        body = self.bodies.current(scheme.codes)
        segments = self.ctx.pool.segments(scheme)
        started = time.perf_counter()
        pool = self.pool_features.of(segments, body, labeled.texts, self.ctx.progress.encoding)
        labeled_embeddings = body.embed(labeled.texts)
        model = RefittedHead(None, scheme.codes, [], body.max_length, body.source)
        model.lexicon = pool.lexicon
        model = refit_lexical_head(
            model, labeled_embeddings, labeled.matrix, self.head_options, labeled.texts
        )
        unlabeled = segments.unlabeled(labels.annotated_ids)
        proba = pool.proba(model.proba_of_rows, len(model.codes))[unlabeled]
        texts, ids = segments.texts[unlabeled], segments.ids[unlabeled]
        scored = Scored(texts, proba, ids, partial(score_texts, body, model))
        seconds = time.perf_counter() - started
        features = model.features(labeled.texts, labeled_embeddings)  # the quality estimate's
        return Fitted(model, seconds, scored, features, kind="head", extra={"body": body.name})


def score_texts(body: Body, model: RefittedHead, texts: list[str]) -> np.ndarray:
    """The round's probabilities for texts outside the pool (evidence's shortened segments): encoded
    with the body itself, not through its cache, which keeps the pool's segments only."""
    return model.proba_of(texts, body.model.embed(texts, precision=body.precision))
