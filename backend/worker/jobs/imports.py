"""Predictions for tasks imported since the serving version's round (TASKS_CREATED).

Label Studio does not ask a backend to predict new tasks while a static version is served, so the
backend predicts them itself, with the serving version and ranked against its round's pool; the
ones predicted here join its pool, so they are predicted once. Like a round, it writes only a
queue head: the WRITE_HEAD most informative of them, one call each, under the name Label Studio
serves (studio/writeback.py), stopping when a round waits (that round ranks them all). They join
the live tasks in their places among the serving version's (their scores are in its band, ranked
against its pool). The rest are in the pool for `/predict` and the next round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from backend.learning.devices import resolved_device
from backend.storage.ranked_pool import RankedPool, read_ranked_pool, write_ranked_pool
from backend.studio.writeback import already_live, write_rest
from backend.worker.context import ProjectContext
from backend.worker.labels import project_scheme
from backend.worker.ranking import Queue, Ranker, Scored

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportedTasks:
    ctx: ProjectContext
    ranker: Ranker
    device: str  # DEVICE, resolved when a model loads: deciding 'auto' imports torch
    others_wait: Callable[[], bool] = lambda: False  # another project's round waits for our slot

    def run(self) -> None:
        ctx = self.ctx
        name = ctx.states.read().current_version
        if not name:
            return
        version = ctx.store.get(ctx.project, name)
        scheme = project_scheme(ctx)
        ranked = read_ranked_pool(version.path)
        known = set() if ranked is None else ranked.ids()
        unlabeled = ctx.studio.tasks(ctx.project_id, annotated=False, data_only=True)
        missing = [task for task in unlabeled if task.id not in known]
        if not missing:
            return
        ctx.pool.add(missing)
        model = ctx.store.load(version, device=resolved_device(self.device))
        if model.codes != scheme.codes:
            log.warning(
                "project %s: the codes changed since %s; new tasks wait for the next round", ctx.project, name
            )
            return
        ranked = ranked or RankedPool.empty(len(model.codes))
        texts = [scheme.text_in(task.data) for task in missing]
        ids = [task.id for task in missing]
        scored = Scored(texts, model.predict_proba(texts), np.asarray(ids, dtype=np.int64))
        # most informative first (imported tasks are never in a validation sample: it was drawn before)
        predictions = self.ranker.predictions(scheme, model, name, scored, ranked, queue=Queue()).predictions
        live = already_live(ctx.project_id, name, predictions)
        write_rest(ctx.task_predictions, live, ctx.write_plan, ctx.round_waits, others_wait=self.others_wait)
        write_ranked_pool(version.path, ranked.with_tasks(ids, scored.proba, model.decide(scored.proba)))
        log.info("project %s: predicted %d new task(s) with %s", ctx.project, len(missing), name)
