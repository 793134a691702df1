"""Publishing a trained version: rank the pool, write it to Label Studio queue head first, record it.

The new version becomes the serving one only once Label Studio took the queue head (see
studio/writeback.py); a failure before that deletes what was written and leaves the serving
version, its predictions and the queue as they were.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from backend.config import LoopSettings, ModelSettings
from backend.domain.scheme import CodingScheme
from backend.domain.tasks import Task
from backend.learning.base import CodingModel
from backend.learning.evidence import ScoreTexts, spans_of_each
from backend.learning.strategies import rank
from backend.storage.ranked_pool import RankedPool, write_ranked_pool
from backend.storage.state import Lane, Monitoring, StateStore, WorkKind
from backend.storage.versions import ModelStore, ModelVersion
from backend.studio.client import StudioAPI
from backend.studio.predictions import WithEvidence, build_predictions
from backend.studio.writeback import IncompleteImport, write_version
from backend.tracking.project import ProjectTracker
from backend.worker.labels import ProjectLabels
from backend.worker.monitoring import Monitor, round_figures
from backend.worker.pool import Pool
from backend.worker.progress import ProgressReporter
from backend.worker.queue import WorkQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trained:
    """What a round trained: the model, its saved version, how long it took, the labeled
    segments' embeddings (SetFit models; for the quality estimate), and how it scores new texts
    (for evidence spans)."""

    model: CodingModel
    version: ModelVersion
    seconds: float
    embeddings: np.ndarray | None = None
    score_texts: ScoreTexts | None = None


@dataclass(frozen=True)
class Publisher:
    """Writes versions of one project to Label Studio and records them."""

    project: str
    studio: StudioAPI
    store: ModelStore
    states: StateStore
    queue: WorkQueue
    pool: Pool
    monitor: Monitor
    tracker: ProjectTracker
    model_settings: ModelSettings
    loop: LoopSettings
    progress: ProgressReporter
    deferred: list[Callable[[], None]] = field(default_factory=list)  # records left for a pause

    def publish(
        self,
        labels: ProjectLabels,
        watch: Monitoring,
        trained: Trained,
        pool: list[Task],
        proba: np.ndarray,
        after_live: Callable[[], None] | None = None,
    ) -> None:
        """Rank `pool` by its probabilities, write the version, switch to it and record the round;
        `after_live` runs once the queue head is live, before the rest is written."""
        model, version, labeled = trained.model, trained.version, labels.labeled
        ranking = rank(
            self.model_settings.strategy_options(), proba, labeled.matrix, thresholds=model.thresholds
        )
        order = ranking.order
        ranked_ids = [pool[i].id for i in order]
        predictions = build_predictions(
            labels.scheme,
            model.thresholds,
            version.name,
            proba[order],
            ranking.scores[order],
            task_ids=ranked_ids,
        )
        predictions = self._with_evidence(
            labels.scheme, trained, [pool[i] for i in order], proba[order], predictions
        )
        write_ranked_pool(
            version.path,
            RankedPool(
                np.asarray([t.id for t in pool], dtype=np.int64), proba, model.decide(proba), labeled.matrix
            ),
        )
        previous = self.states.read().current_version
        before = self.monitor.decisions(previous)  # once this version is live, a body's save may prune it
        try:
            complete = write_version(
                self.studio,
                int(self.project),
                version.name,
                predictions,
                first=self.loop.write_first,
                head=self.loop.write_head,
                on_live=lambda: self._go_live(labels, watch, trained, after_live),
                interrupted=self._newer_work_waits,
                rest_after=self.loop.write_rest_after_seconds,
                on_progress=self.progress.writing,
                keep_old_for=self.loop.keep_old_predictions_seconds,
            )
        except Exception as exc:
            if isinstance(exc, IncompleteImport):
                self.pool.forget()  # a task may be gone: list the pool afresh next time
            if self.states.read().current_version != version.name:
                self.discard(version)
            raise
        finally:
            self.progress.done()

        def written(state) -> None:
            state.complete = complete

        self.states.update(written)
        self.deferred.append(partial(self._record, labels, watch, trained, (before, previous), ranked_ids))
        self._record_deferred()

    def _with_evidence(
        self,
        scheme: CodingScheme,
        trained: Trained,
        ranked: list[Task],
        proba: np.ndarray,
        predictions: list[dict],
    ) -> Sequence[dict]:
        """The predictions, the queue head's (EVIDENCE_TASKS) with the evidence of their suggested
        codes when the form has an evidence tag: coders look there, and each task costs a batch of
        shortened texts, found as it is written."""
        count = min(self.model_settings.evidence_tasks, len(ranked))
        if scheme.evidence is None or not count or trained.score_texts is None:
            return predictions
        texts = [scheme.text_in(task.data) for task in ranked[:count]]
        head = proba[:count]
        suggested = trained.model.decide(head) & scheme.evidence_mask()
        spans_of = spans_of_each(texts, head, suggested, trained.score_texts)
        return WithEvidence(scheme, predictions, spans_of, count)

    def _record_deferred(self) -> None:
        """Make the records of rounds that left them for a pause, oldest first, each part yielding
        to a round that became due meanwhile (the first MLflow record in a process takes seconds)."""
        while self.deferred and not self._newer_work_waits():
            self.deferred.pop(0)()

    def _record(
        self,
        labels: ProjectLabels,
        watch: Monitoring,
        trained: Trained,
        before: tuple[RankedPool | None, str | None],
        ranked: list[int],
    ) -> None:
        """A live version's quality estimate, figures (state) and MLflow run: a second or so that a
        coder who submits again at once need not wait for, so a round that finds the next one
        waiting leaves it for the first round that does not (a thread would slow that next round:
        both are Python, under one GIL). The MLflow run is a part of its own, left for the next
        pause when a round became due meanwhile: the first in a process imports MLflow (seconds)."""
        version, labeled = trained.version, labels.labeled
        quality, model_agreement = self.monitor.quality(trained.model, labels, trained.embeddings)
        stopping = self.monitor.stopping(*before, version.name)
        figures = round_figures(version.name, len(labeled), watch.label_counts or {}, quality, stopping)

        def finish(state) -> None:
            state.monitoring.quality, state.monitoring.stopping = quality, stopping
            state.monitoring.model_agreement = model_agreement
            state.add_figures(figures)

        self.states.update(finish)
        summary = {
            **watch.model_dump(),
            "labeled": len(labeled),
            "last_training_seconds": round(trained.seconds, 2),
            "quality": quality,
            "model_agreement": model_agreement,
            "stopping": stopping,
        }
        self.deferred.insert(0, partial(self._track, version.name, summary, ranked))

    def _track(self, version: str, summary: dict, ranked: list[int]) -> None:
        """A round's MLflow run, linked from its version's figures."""
        run = self.tracker.log_round(version, summary, ranked_task_ids=ranked)
        if run:
            self.states.update(lambda state: state.link_run(version, run))

    def discard(self, version: ModelVersion) -> None:
        """Undo a version that never went live: its predictions in Label Studio and its files."""
        try:
            self.studio.delete_version(int(self.project), version.name)
        except Exception:
            log.warning(
                "project %s: could not delete predictions of discarded version %s", self.project, version.name
            )
        self.store.discard(version)

    def _go_live(
        self,
        labels: ProjectLabels,
        watch: Monitoring,
        trained: Trained,
        after_live: Callable[[], None] | None,
    ) -> None:
        def serve(state) -> None:
            state.monitoring = state.monitoring.model_copy(update=watch.model_dump(exclude_none=True))
            state.current_version, state.complete = trained.version.name, False
            state.labeled, state.waiting_for = len(labels.labeled), None
            state.last_training_seconds = round(trained.seconds, 2)

        self.states.update(serve)
        if after_live is not None:
            after_live()

    def _newer_work_waits(self) -> bool:
        """Whether a newer version is on its way (annotations came): then the rest of this one can go.
        Imported tasks do not make a new version, so their request never stops a write-back: else the
        version would stay incomplete until the next annotation."""
        return WorkKind.TRAIN in self.queue.pending(self.project, Lane.FAST)
