"""Predictions for tasks imported since the serving version's round (TASKS_CREATED).

Label Studio does not ask a backend to predict new tasks while a static version is served, so the
backend predicts them itself, with the serving version and ranked against its round's pool. Tasks
the version ranked but has not written yet are left to its own write-back; the ones predicted
here join its pool, so they are predicted once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from backend.config import LoopSettings, ModelSettings
from backend.learning.devices import resolved_device
from backend.learning.strategies import rank
from backend.storage.ranked_pool import RankedPool, read_ranked_pool, write_ranked_pool
from backend.storage.state import StateStore
from backend.storage.versions import ModelStore
from backend.studio.client import StudioAPI
from backend.studio.predictions import build_predictions
from backend.studio.writeback import write_version
from backend.worker.labels import project_scheme
from backend.worker.pool import Pool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportedTasks:
    project: str
    settings: ModelSettings
    loop: LoopSettings
    studio: StudioAPI
    states: StateStore
    store: ModelStore
    pool: Pool

    def run(self) -> None:
        name = self.states.read().current_version
        if not name:
            return
        version = self.store.get(self.project, name)
        scheme = project_scheme(self.studio, self.project, self.loop)
        ranked = read_ranked_pool(version.path)
        known = set() if ranked is None else ranked.ids()
        unlabeled = self.studio.tasks(int(self.project), annotated=False, data_only=True)
        missing = [task for task in unlabeled if task.id not in known]
        if not missing:
            return
        self.pool.add(missing)
        model = self.store.load(version, device=resolved_device(self.settings.device))
        if model.codes != scheme.codes:
            log.warning(
                "project %s: the codes changed since %s; new tasks wait for the next round",
                self.project,
                name,
            )
            return
        ranked = ranked or RankedPool.empty(len(model.codes))
        proba = model.predict_proba([scheme.text_in(task.data) for task in missing])
        ranking = rank(
            self.settings.strategy_options(),
            proba,
            ranked.labeled,
            thresholds=model.thresholds,
            ranked_before=ranked.proba,
        )
        ids = [task.id for task in missing]
        predictions = build_predictions(scheme, model.thresholds, name, proba, ranking.scores, task_ids=ids)
        write_version(
            self.studio,
            int(self.project),
            name,
            predictions,
            first=0,  # the version is live already: the new tasks' predictions go in bulk
            on_live=lambda: None,
            keep_old_for=self.loop.keep_old_predictions_seconds,
        )
        write_ranked_pool(version.path, ranked.with_tasks(ids, proba, model.decide(proba)))
        log.info("project %s: predicted %d new task(s) with %s", self.project, len(missing), name)
