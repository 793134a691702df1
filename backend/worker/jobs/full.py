"""The full round's fitter: a whole model trained on all labels, then the pool predicted.

For MODEL_KIND=transformer, a differentiable head, or FAST_LOOP=false: whatever the fast loop
cannot refit from cached embeddings. Its round (jobs/training.py) reads the labels in full.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from backend.learning.factories import ModelFactory
from backend.learning.setfit_model import SetFitCodingModel
from backend.worker.context import ProjectContext
from backend.worker.jobs.training import Fitted
from backend.worker.labels import ProjectLabels
from backend.worker.ranking import Scored


@dataclass(frozen=True)
class ModelFitter:
    ctx: ProjectContext
    factory: ModelFactory

    def fit(self, labels: ProjectLabels) -> Fitted:
        """A whole model and its probabilities for the unlabeled tasks (listed afresh: a full round
        may take its time)."""
        labeled, scheme = labels.labeled, labels.scheme
        started = time.perf_counter()
        model = self.factory.train(labeled.texts, labeled.matrix, scheme.codes)
        seconds = time.perf_counter() - started
        self.ctx.pool.refresh()
        segments = self.ctx.pool.segments(scheme)
        unlabeled = segments.unlabeled(labels.annotated_ids)
        texts = list(segments.texts[unlabeled])
        scored = Scored(texts, model.predict_proba(texts), segments.ids[unlabeled], model.predict_proba)
        features = None
        if isinstance(model, SetFitCodingModel):  # the quality estimate's: what the head saw
            features = model.features(labeled.texts, model.embed(labeled.texts))
        return Fitted(model, seconds, scored, features)
