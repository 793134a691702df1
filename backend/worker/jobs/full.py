"""A full round: train a whole model on all labels, predict the pool and write it back.

For MODEL_KIND=transformer, a differentiable head, or FAST_LOOP=false: whatever the fast loop
cannot refit from cached embeddings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from backend.config import LoopSettings
from backend.learning.factories import ModelFactory
from backend.learning.setfit_model import SetFitCodingModel
from backend.storage.state import StateStore
from backend.studio.client import StudioAPI
from backend.worker.jobs.common import VersionSaver, wait_for_examples
from backend.worker.labels import read_labels
from backend.worker.monitoring import Monitor
from backend.worker.pool import Pool
from backend.worker.publish import Publisher, Trained


@dataclass(frozen=True)
class FullRound:
    project: str
    loop: LoopSettings
    factory: ModelFactory
    studio: StudioAPI
    states: StateStore
    pool: Pool
    saver: VersionSaver
    monitor: Monitor
    publisher: Publisher

    def run(self) -> None:
        labels = read_labels(self.studio, self.project, self.loop)
        watch = self.monitor.watch(labels)
        labeled, scheme = labels.labeled, labels.scheme
        if wait_for_examples(self.project, labeled, self.loop, self.states, watch):
            return
        started = time.perf_counter()
        model = self.factory.train(labeled.texts, labeled.matrix, scheme.codes)
        seconds = time.perf_counter() - started
        version = self.saver.save(model, labeled, seconds, "full")
        try:
            self.pool.refresh()
            pool = self.pool.tasks(labels.annotated_ids)
            proba = model.predict_proba([scheme.text_in(task.data) for task in pool])
        except Exception:
            self.publisher.discard(version)
            raise
        embeddings = model.embed(labeled.texts) if isinstance(model, SetFitCodingModel) else None
        self.publisher.publish(
            labels, watch, Trained(model, version, seconds, embeddings, model.predict_proba), pool, proba
        )
