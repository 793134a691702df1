"""Publishing a trained version, as steps that each return what the next takes:

    ranked = publisher.rank(labels, trained, scored)   # the pool in queue order, as predictions
    live = publisher.go_live(ranked, labels, measured)  # Label Studio serves it; the state says so
    complete = publisher.write_rest(live)               # the rest, unless newer work waits

Label Studio serves one name for good (domain/versions.py `LIVE`): each version writes its queue
head under it, in place of the previous head's predictions, with scores below every older version's,
so Label Studio serves its head first and what older heads left live after it (studio/writeback.py).
The queue is written from its first places, which coders may be served next. The new version
becomes the serving one (`current_version`, internal) once Label Studio took the front of its
queue; a failure before that removes the version's files and leaves the serving version as it was.
The few predictions it had written already (its first places at most) are demoted to its name:
nothing is deleted in Label Studio, so no coder's open task loses its prediction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from backend.learning.base import CodingModel
from backend.storage.ranked_pool import RankedPool, write_ranked_pool
from backend.storage.state import Monitoring, ProjectState
from backend.storage.versions import ModelVersion
from backend.studio import writeback
from backend.studio.task_predictions import IncompleteImport
from backend.studio.writeback import Live
from backend.worker.context import ProjectContext
from backend.worker.labels import ProjectLabels
from backend.worker.ranking import Queue, Ranker, Scored

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trained:
    """What a round trained: the model, its saved version, how long it took, and the labeled
    segments' features as its head saw them (SetFit models: embeddings, or FEATURES=tfidf+embeddings'
    TF-IDF beside them; for the quality estimate)."""

    model: CodingModel
    version: ModelVersion
    seconds: float
    embeddings: np.ndarray | None = None


@dataclass(frozen=True)
class Ranked:
    """A trained version's pool: its task ids most informative first, its predictions in queue
    order (the order they are written), and the pool as the version keeps it (for `/predict`,
    imported tasks and the next stopping signal)."""

    trained: Trained
    task_ids: np.ndarray
    predictions: Sequence[dict]
    pool: RankedPool


@dataclass(frozen=True)
class Replaced:
    """The version a round replaced, and its decisions on its pool (for the stopping signal)."""

    name: str | None
    decisions: RankedPool | None


@dataclass(frozen=True)
class LiveRound:
    """A version Label Studio serves now, the one it replaced, how many of its head are written before
    newer work may stop it (`floor`), and the tasks annotated at its round (they leave the live set)."""

    ranked: Ranked
    live: Live
    replaced: Replaced
    floor: int = 0
    labeled: frozenset[int] = frozenset()
    taken: int = 0  # tasks coded since the version it replaced


def first_places(labels: ProjectLabels) -> int:
    """How many of a queue's first places Label Studio may serve before the next are written: one
    per coder who annotated, and one more (a coder new to the project). Label Studio 1.23 serves a
    coder the first unlocked task by score (`projects/functions/next_task.py`); the others hold at
    most one lock each."""
    return labels.coders + 1


@dataclass(frozen=True)
class Publisher:
    """Writes one project's versions to Label Studio."""

    ctx: ProjectContext
    ranker: Ranker
    others_wait: Callable[[], bool] = lambda: False  # another project's round waits for our slot

    def rank(self, labels: ProjectLabels, trained: Trained, scored: Scored) -> Ranked:
        """The pool's predictions in the order they are written (`scored.task_ids`: the round's
        unlabeled tasks)."""
        model, matrix = trained.model, labels.labeled.matrix
        ids = np.asarray(scored.task_ids if scored.task_ids is not None else [], dtype=np.int64)
        pool = RankedPool(ids, scored.proba, model.decide(scored.proba), matrix)
        against = RankedPool.empty(len(model.codes), labeled=matrix)
        ranked = self.ranker.predictions(
            labels.scheme, model, trained.version.name, scored, against, queue=self.queue()
        )
        return Ranked(trained, ids[ranked.order], ranked.predictions, pool)

    def queue(self) -> Queue:
        """The queue's order: the validation sample, while it is held out, one task in its `every`."""
        sample = self.ctx.validation.read()
        if sample is None or sample.released_at:
            return Queue()
        return Queue(tuple(sample.task_ids), sample.every)

    def go_live(self, ranked: Ranked, labels: ProjectLabels, measured: Monitoring) -> LiveRound:
        """Write the front of the queue under the served name; the state records the version as the
        serving one. On failure nothing of it stays served."""
        ctx, version, trained = self.ctx, ranked.trained.version, ranked.trained
        write_ranked_pool(version.path, ranked.pool)
        previous = ctx.states.read().current_version  # read now: once live, a body's save may prune it
        replaced = Replaced(previous, ctx.store.ranked_pool(ctx.project, previous))
        before = replaced.decisions  # the pool it ranked: the tasks unlabeled then
        taken = 0 if before is None else max(0, len(before.task_ids) - len(ranked.pool.task_ids))

        def serve(state: ProjectState) -> None:
            state.monitoring = state.monitoring.merged(measured)
            state.current_version, state.complete = version.name, False
            state.labeled, state.waiting_for = len(labels.labeled), None
            state.last_training_seconds = round(trained.seconds, 2)

        places = first_places(labels)
        try:
            live = writeback.go_live(
                ctx.task_predictions, version.name, ranked.predictions, max(ctx.loop.write_first, places)
            )
            ctx.states.update(serve)
        except Exception as exc:
            self._failed(exc, version)
            raise
        # each coder served twice over, and twice what coders took while the last version served
        floor = live.written + places + 2 * taken
        return LiveRound(ranked, live, replaced, floor, frozenset(labels.annotated_ids), taken)

    def write_rest(self, live_round: LiveRound) -> bool:
        """Write the rest of the version's queue head, unless newer work waits, and take the tasks
        coded meanwhile out of the live set; returns whether all of the head was written."""
        ctx = self.ctx
        by_import, moved = ctx.task_predictions.by_import, live_round.taken > 0
        plan = writeback.for_coders(ctx.write_plan, live_round.floor, by_import, coders_moved=moved)
        try:
            target, live = ctx.task_predictions, live_round.live
            writing = ctx.progress.writing
            complete = writeback.write_rest(target, live, plan, ctx.round_waits, writing, self.others_wait)
            writeback.forget(target, live_round.labeled)
        except Exception as exc:
            self._failed(exc, live_round.ranked.trained.version)
            raise
        ctx.progress.done()
        ctx.states.update(lambda state: setattr(state, "complete", complete))
        return complete

    def discard(self, version: ModelVersion) -> None:
        """Undo a version that never went live: the few predictions it wrote are demoted to its name
        (kept in place, not served, for the next version to write over), and its files go."""
        try:
            writeback.withdraw(self.ctx.task_predictions, version.name)
        except Exception as exc:  # Label Studio unreachable: they stay served until the next version
            log.warning("project %s: %s's predictions stay served (%s)", self.ctx.project, version.name, exc)
        self.ctx.store.discard(version)

    def _failed(self, exc: Exception, version: ModelVersion) -> None:
        """After a failed write: list the pool afresh if a task may be gone, and undo the version
        unless it went live."""
        self.ctx.progress.done()
        if isinstance(exc, IncompleteImport):
            self.ctx.pool.forget()
        if self.ctx.states.read().current_version != version.name:
            self.discard(version)
