"""Encoding a project's segments before anyone annotates, in the background lane.

The fast loop's first round used to encode the whole pool after the tenth annotation (8,605
distinct texts of the study: about 205 s on a 2-core machine), although coders need minutes for
their first ten. Now connecting the backend (`/setup`) or importing tasks before the first round
asks for this job: it encodes every task with the current body into that body's cache, so the
first round only fits a head and writes. The cache saves each chunk as it goes, so a job cut short
resumes where it stopped, and a round that starts meanwhile shares the work instead of doing it
twice (storage/embeddings.py). It also prepares the project's MLflow experiment, so the first
round's record does not create the tracking store while a coder waits. With
FEATURES=tfidf+embeddings it fits the project's lexicon on the same segments and saves it with their
TF-IDF rows (storage/lexicon.py), which every first version otherwise made after the tenth
annotation (10,000 segments: 1.6 s; 100,000: 15 s on a 2-core machine).
With COLD_START=codebook it then writes the codebook's queue (worker/cold_start.py).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from backend.domain.tasks import Task
from backend.storage.lexicon import LexiconStore
from backend.storage.state import PoolEncoding, now
from backend.tracking.project import ProjectTracker
from backend.worker.bodies import Bodies
from backend.worker.cold_start import write_codebook_start
from backend.worker.context import ProjectContext
from backend.worker.labels import project_scheme

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolPreEncoding:
    ctx: ProjectContext
    bodies: Bodies
    tracker: ProjectTracker
    lexicon: LexiconStore | None = None

    def run(self) -> None:
        import torch

        ctx = self.ctx
        self.tracker.prepare()

        torch.set_num_threads(os.cpu_count() or 1)  # a background lane's process runs at low priority
        scheme = project_scheme(ctx)
        unlabeled = [Task(i, data) for i, data in ctx.pool.refresh().items()]  # kept for the first round
        annotated = [task.data for task in ctx.studio.tasks(ctx.project_id, annotated=True, data_only=True)]
        texts = [
            text
            for text in (scheme.text_in(data) for data in [t.data for t in unlabeled] + annotated)
            if text.strip()
        ]
        body = self.bodies.current(scheme.codes)
        body.embed(texts, ctx.progress.encoding)
        ctx.progress.done()
        self.fit_lexicon(texts)  # before the pool counts as encoded: a first round finds it ready
        encoded = PoolEncoding(body=body.name, segments=len(texts), finished_at=now())

        def record(state) -> None:
            state.pool_encoded, state.encoded_in = encoded, body.precision

        ctx.states.update(record)
        log.info("project %s: %d segments encoded with body %s", ctx.project, len(texts), body.name)
        try:
            write_codebook_start(ctx, scheme, body, unlabeled)
        except Exception as exc:  # the pool is encoded: that is this job's work; the queue stays as it was
            log.warning("project %s: the codebook's queue was not written: %s", ctx.project, exc)

    def fit_lexicon(self, texts: list[str]) -> None:
        """Fit and save the project's lexicon with its segments' rows, which this lane then lets go.
        A failure costs only the head start: the first round fits it then."""
        if self.lexicon is None or not texts:
            return
        try:
            self.lexicon.current(texts).forget()
        except Exception as exc:  # no term at all (every segment a number, say): the round says so
            log.warning("project %s: the TF-IDF lexicon was not fitted: %s", self.ctx.project, exc)
