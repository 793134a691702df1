"""Predictions for `/predict` with each project's serving version, ranked against its round's pool.

New tasks are ranked together with the pool the version's round ranked, so their prediction scores
mean the same as those the round wrote: lower = more informative.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from backend.config import ModelSettings
from backend.domain.scheme import CodingScheme
from backend.learning.base import CodingModel
from backend.learning.strategies import rank
from backend.storage.ranked_pool import RankedPool, read_ranked_pool
from backend.storage.state import StateStore
from backend.storage.versions import ModelStore, ModelVersion
from backend.studio.predictions import build_predictions, empty_predictions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Serving:
    """A project's serving version, its model and its round's pool."""

    version: ModelVersion
    model: CodingModel
    pool: RankedPool


class Predictor:
    """Serves predictions with each project's current version, loaded once per process."""

    def __init__(self, settings: ModelSettings, store: ModelStore):
        self.settings = settings
        self.store = store
        self._loaded: dict[str, Serving] = {}
        self._lock = threading.Lock()

    def serving(self, project: str) -> Serving | None:
        """The project's serving version, loaded; None before the first round."""
        name = StateStore(self.store.layout.project(project)).read().current_version
        if not name:
            return None
        with self._lock:
            loaded = self._loaded.get(project)
            if loaded is None or loaded.version.name != name:
                version = self.store.get(project, name)
                log.info("project %s: loading model version %s", project, name)
                model = self.store.load(version, device=self.settings.resolved_device())
                pool = read_ranked_pool(version.path) or RankedPool.empty(len(model.codes))
                loaded = self._loaded[project] = Serving(version, model, pool)
            return loaded

    def predict(self, project: str, scheme: CodingScheme, tasks: list[dict]) -> list[dict]:
        """One Label Studio prediction per task, in order (empty results before the first round)."""
        serving = self.serving(project)
        if serving is None:
            return empty_predictions("untrained", len(tasks))
        model, name = serving.model, serving.version.name
        if model.codes != scheme.codes:
            log.warning("project %s: label config changed since %s; predictions skipped", project, name)
            return empty_predictions(name, len(tasks))
        proba = model.predict_proba([scheme.text_of(task) for task in tasks])
        ranking = rank(
            self.settings.query_strategy,
            proba,
            serving.pool.labeled,
            thresholds=model.thresholds,
            seed=self.settings.seed,
            ranked_before=serving.pool.proba,
        )
        return build_predictions(scheme, model.thresholds, name, proba, ranking.scores)
