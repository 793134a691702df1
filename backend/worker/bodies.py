"""The sentence-transformer body a project's fast loop refits heads on, with its embeddings.

Before the first fine-tuning the body is MODEL_NAME's own ('base'); afterwards it is the newest
body the background lane fine-tuned (the state's body version). One body is kept in memory per
process, with its embedding cache: inside its version directory for a fine-tuned body, under
``MODEL_DIR/.embeddings/`` for the base model (shared by projects).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from backend.learning.devices import resolved_device, resolved_precision
from backend.learning.options import EncoderOptions
from backend.learning.setfit_model import SetFitCodingModel, base_model
from backend.storage.embeddings import EmbeddingCache
from backend.storage.state import StateStore
from backend.storage.versions import ModelStore
from backend.worker.memory import encoding_allocations

log = logging.getLogger(__name__)
BASE = "base"


@dataclass
class Body:
    """A body: its name (a version or 'base'), where it loads from, its token limit, its embeddings
    and the precision they are encoded in. The model itself is loaded only when a text is not in
    the cache: a fast lane whose pool was encoded beforehand never holds the body's weights (0.45
    GB for the production model)."""

    name: str
    source: str
    max_length: int
    cache: EmbeddingCache
    precision: str
    load: Callable[[], SetFitCodingModel] = field(repr=False)
    _model: SetFitCodingModel | None = field(default=None, repr=False)

    @property
    def model(self) -> SetFitCodingModel:
        if self._model is None:
            self._model = self.load()
        return self._model

    def embed(
        self, texts: Sequence[str], on_progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        # the fast loop's case, all cached: no allocator tuning, no trim
        return self.cache.embed(texts, self._encode, on_progress, encoding_allocations)

    def rows(self, texts: Sequence[str], on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """The cache's rows of `texts` (for `embeddings_at`), those not cached encoded now."""
        return self.cache.rows(texts, self._encode, on_progress, encoding_allocations)

    def embeddings_at(self, rows: np.ndarray) -> np.ndarray:
        """The embeddings at the cache's `rows` (a pool's: a chunk at a time, never all at once)."""
        return self.cache.matrix_rows(rows)

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.model.embed(texts, precision=self.precision)


def embeddings_dir(
    store: ModelStore, project: str, body: str, encoder: EncoderOptions, precision: str
) -> Path:
    """Where a body's embeddings in `precision` are cached (one cache per precision)."""
    if body == BASE:
        return store.layout.base_embeddings(encoder.model_name, encoder.max_length, precision)
    return store.layout.version_embeddings(store.get(project, body).path, precision)


class Bodies:
    """The project's current body, loaded once per process."""

    def __init__(self, project: str, encoder: EncoderOptions, store: ModelStore, states: StateStore):
        self.project, self.encoder, self.store, self.states = project, encoder, store, states
        self._body: Body | None = None

    def current(self, codes: Sequence[str]) -> Body:
        name = self.states.read().body.version or BASE
        if name != BASE and not self.store.has(self.project, name):
            log.warning("project %s: body %s is gone; the base model stands in", self.project, name)
            name = BASE
        if self._body is None or self._body.name != name:
            self._body = self._load(name, codes)
        return self._body

    def base(self, codes: Sequence[str]) -> Body:
        """The base body, which a fine-tuned one is judged against (its embeddings are cached)."""
        return self._load(BASE, codes)

    def _load(self, name: str, codes: Sequence[str]) -> Body:
        if name == BASE:
            source = self.encoder.model_name
        else:  # beside the head, relative to it: MODEL_DIR may move
            source = f"../{self.store.get(self.project, name).path.name}/setfit"
        precision = self._precision()
        cache = EmbeddingCache(embeddings_dir(self.store, self.project, name, self.encoder, precision))
        return Body(
            name, source, self.encoder.max_length, cache, precision, partial(self._model, name, codes)
        )

    def _precision(self) -> str:
        """ENCODE_PRECISION, with 'auto' taken as the lane that encodes resolved it (the state's
        `encoded_in`): resolving it imports torch, 0.35 GB and seconds a fast lane whose pool is
        encoded needs for nothing else, and the cache to read is the one that lane wrote."""
        if self.encoder.precision != "auto":
            return self.encoder.precision
        return self.states.read().encoded_in or resolved_precision(
            self.encoder.precision, self.encoder.device
        )

    def _model(self, name: str, codes: Sequence[str]) -> SetFitCodingModel:
        log.info("project %s: loading body %s", self.project, name)
        if name == BASE:
            return base_model(codes, self.encoder)
        loaded = self.store.load(
            self.store.get(self.project, name), device=resolved_device(self.encoder.device)
        )
        assert isinstance(loaded, SetFitCodingModel)
        return loaded
