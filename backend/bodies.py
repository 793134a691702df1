"""The sentence-transformer body a project's fast loop refits heads on, with its embeddings.

Before the first fine-tuning the body is MODEL_NAME's own; afterwards it is the newest body the
background lane fine-tuned (``state.json: body_version``). One body is kept in memory per
process, with its embedding cache (``embeddings.py``): inside its version directory for a
fine-tuned body, under ``MODEL_DIR/.embeddings/`` for the base model (shared by projects).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from backend.config import Settings
from backend.embeddings import EmbeddingCache
from backend.model import SetFitCodingModel, base_model
from backend.scheduler import read_state
from backend.versions import ModelStore

log = logging.getLogger(__name__)
BASE = "base"


@dataclass
class Body:
    """A body: its name (a version or 'base'), model, where it loads from, and its embeddings."""

    name: str
    model: SetFitCodingModel
    source: str
    cache: EmbeddingCache

    def embed(self, texts: Sequence[str]):
        return self.cache.embed(texts, self.model.embed)


def embeddings_dir(store: ModelStore, project: str, body: str, settings: Settings) -> Path:
    if body != BASE:
        return store.get(project, body).path / "embeddings"
    key = hashlib.sha1(f"{settings.model_name}|{settings.max_length}".encode()).hexdigest()[:16]
    return store.root / ".embeddings" / key


class Bodies:
    """The project's current body, loaded once per process."""

    def __init__(self, project: str, settings: Settings, store: ModelStore):
        self.project, self.settings, self.store = project, settings, store
        self._body: Body | None = None

    def current(self, codes: Sequence[str]) -> Body:
        name = read_state(self.store.root, self.project).get("body_version") or BASE
        if name != BASE and not any(v.name == name for v in self.store.versions(self.project)):
            log.warning("project %s: body %s is gone; the base model stands in", self.project, name)
            name = BASE
        if self._body is None or self._body.name != name:
            self._body = self._load(name, codes)
        return self._body

    def _load(self, name: str, codes: Sequence[str]) -> Body:
        log.info("project %s: loading body %s", self.project, name)
        if name == BASE:
            model, source = base_model(codes, self.settings), self.settings.model_name
        else:
            version = self.store.get(self.project, name)
            model = self.store.load(version, device=self.settings.resolved_device())
            source = f"../{version.path.name}/setfit"  # beside the head's version: MODEL_DIR may move
        cache = EmbeddingCache(embeddings_dir(self.store, self.project, name, self.settings))
        return Body(name, model, source, cache)
