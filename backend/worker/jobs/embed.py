"""Encoding a project's segments before anyone annotates, in the background lane.

The fast loop's first round used to encode the whole pool after the tenth annotation (8,605
distinct texts of the study: about 205 s on a 2-core machine), although coders need minutes for
their first ten. Now connecting the backend (`/setup`) or importing tasks before the first round
asks for this job: it encodes every task with the current body into that body's cache, so the
first round only fits a head and writes. The cache saves each chunk as it goes, so a job cut short
resumes where it stopped, and a round that starts meanwhile shares the work instead of doing it
twice (storage/embeddings.py). It also prepares the project's MLflow experiment, so the first
round's record does not create the tracking store while a coder waits. With COLD_START=codebook it
then writes the codebook's queue (worker/cold_start.py).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from backend.config import LoopSettings
from backend.domain.tasks import Task
from backend.queue.interface import WorkQueue
from backend.storage.state import PoolEncoding, StateStore, now
from backend.studio.client import StudioAPI
from backend.tracking.project import ProjectTracker
from backend.worker.bodies import Bodies
from backend.worker.cold_start import write_codebook_start
from backend.worker.labels import project_scheme
from backend.worker.pool import Pool
from backend.worker.progress import ProgressReporter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolPreEncoding:
    project: str
    studio: StudioAPI
    states: StateStore
    bodies: Bodies
    pool: Pool
    progress: ProgressReporter
    tracker: ProjectTracker
    loop: LoopSettings
    queue: WorkQueue

    def run(self) -> None:
        import torch

        self.tracker.prepare()

        torch.set_num_threads(os.cpu_count() or 1)  # a background lane's process runs at low priority
        scheme = project_scheme(self.studio, self.project, self.loop)
        unlabeled = [Task(i, data) for i, data in self.pool.refresh().items()]  # kept for the first round
        annotated = [
            task.data for task in self.studio.tasks(int(self.project), annotated=True, data_only=True)
        ]
        texts = [
            text
            for text in (scheme.text_in(data) for data in [t.data for t in unlabeled] + annotated)
            if text.strip()
        ]
        body = self.bodies.current(scheme.codes)
        body.embed(texts, self.progress.encoding)
        self.progress.done()
        encoded = PoolEncoding(body=body.name, segments=len(texts), finished_at=now())

        def record(state) -> None:
            state.pool_encoded, state.encoded_in = encoded, body.precision

        self.states.update(record)
        log.info("project %s: %d segments encoded with body %s", self.project, len(texts), body.name)
        try:
            write_codebook_start(
                self.project, scheme, body, unlabeled, self.studio, self.states, self.queue, self.loop
            )
        except Exception as exc:  # the pool is encoded: that is this job's work; the queue stays as it was
            log.warning("project %s: the codebook's queue was not written: %s", self.project, exc)
