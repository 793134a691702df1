"""The background lane: fine-tune a SetFit body on all labels and embed the pool with it. The fast
loop is then asked for a round, which takes the new body."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

from backend.config import LoopSettings
from backend.learning.factories import ModelFactory
from backend.storage.embeddings import EmbeddingCache
from backend.storage.state import StateStore, WorkKind
from backend.storage.versions import ModelStore
from backend.studio.client import StudioAPI
from backend.worker.bodies import embeddings_dir
from backend.worker.jobs.common import VersionSaver, wait_for_examples
from backend.worker.labels import read_labels
from backend.worker.memory import release_memory
from backend.worker.pool import Pool
from backend.worker.queue import WorkQueue


@dataclass(frozen=True)
class BodyFineTuning:
    project: str
    loop: LoopSettings
    factory: ModelFactory
    studio: StudioAPI
    states: StateStore
    store: ModelStore
    pool: Pool
    saver: VersionSaver
    queue: WorkQueue

    def run(self) -> None:
        import torch

        torch.set_num_threads(self.loop.body_threads)
        labels = read_labels(self.studio, self.project, self.loop)
        labeled = labels.labeled
        if wait_for_examples(self.project, labeled, self.loop, self.states):
            return
        started = time.perf_counter()
        model = self.factory.new(labeled.texts, labeled.matrix, labels.scheme.codes)
        seconds = time.perf_counter() - started
        version = self.saver.save(model, labeled, seconds, "body")
        release_memory()
        pool = self.pool.refresh().values()
        precision = self.factory.settings.resolved_encode_precision()
        directory = embeddings_dir(self.store, self.project, version.name, self.factory.settings, precision)
        encode = partial(model.embed, precision=precision)
        # the worker's small mmap threshold kept: this lane's peak is the fast lane's memory plus its own
        EmbeddingCache(directory).embed(
            [labels.scheme.text_in(data) for data in pool] + labeled.texts, encode
        )
        release_memory()

        def hand_over(state) -> None:
            state.body.version, state.body.labeled = version.name, len(labeled)
            state.body.seconds, state.encoded_in = round(seconds, 2), precision

        self.states.update(hand_over)
        self.queue.request(self.project, WorkKind.TRAIN)  # the fast loop takes the new body
