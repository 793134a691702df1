"""Predictions for `/predict` with each project's serving version, ranked against its round's pool.

New tasks are ranked together with the pool the version's round ranked, so their prediction scores
mean the same as those the round wrote: lower = more informative.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

from backend.config import ModelSettings
from backend.domain.scheme import CodingScheme
from backend.learning.base import CodingModel
from backend.learning.devices import resolved_device
from backend.storage.ranked_pool import RankedPool, read_ranked_pool
from backend.storage.state import StateStore
from backend.storage.validation import ValidationStore
from backend.storage.versions import ModelStore, ModelVersion
from backend.studio.predictions import empty_predictions, without_suggestion
from backend.worker.ranking import Scored, ranker_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Serving:
    """A project's serving version, its model and its round's pool."""

    version: ModelVersion
    model: CodingModel
    pool: RankedPool


class Predictor:
    """Serves predictions with each project's current version, loaded once per process; the
    `keep` most recently used projects' models stay loaded (a MiniLM-L12 body is ~0.5 GB).

    A request never waits for a newer version to load: it is answered with the version already in
    memory while the new one loads in the background (a second or two), so a burst of `/predict`
    calls cannot tie up every server thread (and `/health` with them). Only a project's first
    request in a process waits for its load; :meth:`warm_up` does those at start.
    """

    def __init__(self, settings: ModelSettings, store: ModelStore, keep: int = 4):
        self.settings = settings
        self.ranker = ranker_of(settings)
        self.store = store
        self.keep = keep
        self._loaded: OrderedDict[str, Serving] = OrderedDict()
        self._loading: set[str] = set()
        self._project_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def serving(self, project: str) -> Serving | None:
        """The project's serving version, loaded (or the one before it while it loads); None before
        the first round."""
        name = self._serving_name(project)
        if not name:
            return None
        with self._guard:
            loaded = self._loaded.get(project)
            if loaded is not None:
                self._loaded.move_to_end(project)
                if loaded.version.name != name and project not in self._loading:
                    self._loading.add(project)
                    threading.Thread(target=self._refresh, args=(project, name), daemon=True).start()
                return loaded
            lock = self._project_locks.setdefault(project, threading.Lock())
        with lock:  # the first request of a project waits for its load; others of it wait with it
            with self._guard:
                if project in self._loaded:
                    return self._loaded[project]
            try:
                return self._load(project, name)
            except FileNotFoundError:
                newer = self._serving_name(project)
                if not newer or newer == name:
                    raise
                # pruned between reading the state and loading it: a newer version serves by now
                log.info("project %s: %s was replaced while it loaded; loading %s", project, name, newer)
                return self._load(project, newer)

    def _serving_name(self, project: str) -> str | None:
        return StateStore(self.store.layout.project(project)).read().current_version

    def warm_up(self, projects: list[str]) -> None:
        """Load the serving versions of `projects` (the first `keep` of them) in the background."""

        def load_all() -> None:
            for project in projects[: self.keep]:
                try:
                    self.serving(project)
                except Exception as exc:  # a damaged version must not stop the server from starting
                    log.warning("project %s: its model could not be loaded at start: %s", project, exc)

        threading.Thread(target=load_all, daemon=True).start()

    def loaded(self) -> list[str]:
        """Projects whose serving model is in memory, least recently used first."""
        with self._guard:
            return list(self._loaded)

    def _refresh(self, project: str, name: str) -> None:
        try:
            self._load(project, name)
        except Exception as exc:  # the old version keeps serving; the next request tries again
            log.warning("project %s: version %s could not be loaded: %s", project, name, exc)
        finally:
            with self._guard:
                self._loading.discard(project)

    def _load(self, project: str, name: str) -> Serving:
        version = self.store.get(project, name)
        log.info("project %s: loading model version %s", project, name)
        model = self.store.load(version, device=resolved_device(self.settings.device))
        pool = read_ranked_pool(version.path) or RankedPool.empty(len(model.codes))
        serving = Serving(version, model, pool)
        with self._guard:
            self._loaded[project] = serving
            self._loaded.move_to_end(project)
            while len(self._loaded) > self.keep:
                dropped, _ = self._loaded.popitem(last=False)
                log.info("project %s: its model is unloaded (MAX_LOADED_MODELS=%d)", dropped, self.keep)
        return serving

    def predict(self, project: str, scheme: CodingScheme, tasks: list[dict]) -> list[dict]:
        """One Label Studio prediction per task, in order (empty results before the first round, and
        for the tasks of a validation sample held out: they are coded blind)."""
        serving = self.serving(project)
        if serving is None:
            return empty_predictions("untrained", len(tasks))
        model, name = serving.model, serving.version.name
        if model.codes != scheme.codes:
            log.warning("project %s: label config changed since %s; predictions skipped", project, name)
            return empty_predictions(name, len(tasks))
        texts = [scheme.text_of(task) for task in tasks]
        scored = Scored(texts, model.predict_proba(texts), score_texts=model.predict_proba)
        answers = list(self.ranker.predictions(scheme, model, name, scored, serving.pool).predictions)
        blind = ValidationStore(self.store.layout.project(project)).held_out()
        return list(
            without_suggestion(
                scheme, answers, [i for i, task in enumerate(tasks) if task.get("id") in blind]
            )
        )
