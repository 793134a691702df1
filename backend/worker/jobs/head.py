"""The fast loop's round after annotations: refit the head on the current body's cached embeddings,
re-rank the pool and write it back; seconds, where fine-tuning a body takes minutes.

The labels come from the worker's last full read plus the annotations webhooks brought since
(worker/labels.py); once the new version is live, a full read reconciles, and asks for another
round if Label Studio holds labels the webhooks did not bring.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial

import numpy as np

from backend.config import LoopSettings
from backend.learning.heads import HeadOptions
from backend.learning.setfit_model import RefittedHead, refit_head
from backend.queue.interface import WorkQueue
from backend.queue.work import Lane, WorkKind
from backend.storage.state import StateStore
from backend.studio.client import StudioAPI
from backend.worker.bodies import Bodies, Body
from backend.worker.body_policy import BodyPolicy
from backend.worker.jobs.common import VersionSaver, wait_for_examples
from backend.worker.labels import LabelFeed, ProjectLabels
from backend.worker.monitoring import Monitor
from backend.worker.pool import Pool
from backend.worker.progress import ProgressReporter
from backend.worker.publish import Publisher, Trained

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadRefit:
    project: str
    loop: LoopSettings
    head: HeadOptions
    studio: StudioAPI
    states: StateStore
    bodies: Bodies
    pool: Pool
    saver: VersionSaver
    monitor: Monitor
    publisher: Publisher
    body_policy: BodyPolicy
    progress: ProgressReporter
    labels: LabelFeed
    queue: WorkQueue

    def run(self) -> None:
        labels, read_in_full = self.labels.current()
        if not read_in_full and len(labels.labeled) < self.loop.min_annotations_to_train:
            labels, read_in_full = self.labels.read(), True  # no round yet: count what Label Studio holds
        watch = self.monitor.watch(labels)
        labeled = labels.labeled
        if wait_for_examples(self.project, labeled, self.loop, self.states, watch):
            return
        body = self.bodies.current(labels.scheme.codes)
        pool = self.pool.tasks(labels.annotated_ids)
        started = time.perf_counter()
        labeled_embeddings = body.embed(labeled.texts)
        pool_texts = [labels.scheme.text_in(task.data) for task in pool]
        filled = [i for i, text in enumerate(pool_texts) if text.strip()]  # a blank one carries no code
        pool_embeddings = body.embed([pool_texts[i] for i in filled], self.progress.encoding)
        model = refit_head(
            body.source, body.max_length, labeled_embeddings, labeled.matrix, labels.scheme.codes, self.head
        )
        proba = np.zeros((len(pool), len(model.codes)))
        proba[filled] = model.head_proba(pool_embeddings)
        seconds = time.perf_counter() - started
        version = self.saver.save(model, labeled, seconds, "head", body=body.name)
        self.publisher.publish(
            labels,
            watch,
            Trained(model, version, seconds, labeled_embeddings, partial(score_texts, body, model)),
            pool,
            proba,
            after_live=None if read_in_full else lambda: self.reconcile(labels),
        )
        self.body_policy.ask_if_due(len(labeled))

    def reconcile(self, used: ProjectLabels) -> None:
        """Read every annotation from Label Studio; another round follows if `used` missed some.

        When the next annotation's round already waits, that round reconciles instead: this read
        would only delay it (a coder who submits at once waits for it)."""
        if WorkKind.TRAIN in self.queue.pending(self.project, Lane.FAST):
            return
        try:
            missed = self.labels.reconcile(used)
        except Exception as exc:  # the version is live: a failed read only costs the shortcut
            self.labels.forget()
            log.warning(
                "project %s: labels not reconciled (%s); the next round reads them all", self.project, exc
            )
            return
        if missed.missing:
            log.info(
                "project %s: Label Studio holds %d annotated task(s) this round did not have (a webhook "
                "lost or still on its way); another round follows",
                self.project,
                missed.missing,
            )
        if missed.differing:
            log.warning(
                "project %s: %d task(s) trained on differ from Label Studio's (an edit whose webhook was "
                "lost or is on its way, changed codes); another round follows",
                self.project,
                missed.differing,
            )
        if missed:
            self.queue.request(self.project, WorkKind.TRAIN)


def score_texts(body: Body, model: RefittedHead, texts: list[str]) -> np.ndarray:
    """The round's probabilities for texts outside the pool (evidence's shortened segments): encoded
    with the body itself, not through its cache, which keeps the pool's segments only."""
    return model.head_proba(body.model.embed(texts, precision=body.precision))
