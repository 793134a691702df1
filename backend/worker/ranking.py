"""Rank → predictions → evidence: the one way a model's probabilities become Label Studio
predictions, for a round's pool, for tasks imported since, and for `/predict` answers."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backend.config import ModelSettings
from backend.domain.scheme import CodingScheme
from backend.learning.base import CodingModel
from backend.learning.evidence import ScoreTexts, spans_of_all, spans_of_each
from backend.learning.options import StrategyOptions
from backend.learning.strategies import Ranking, rank, to_prediction_scores
from backend.storage.ranked_pool import RankedPool
from backend.studio.predictions import WithEvidence, build_predictions, without_suggestion


@dataclass(frozen=True)
class Scored:
    """A model's probabilities for some tasks; `task_ids` for predictions written to Label Studio
    (none for a `/predict` answer), `score_texts` to find evidence (none: no evidence)."""

    texts: list[str]
    proba: np.ndarray
    task_ids: list[int] | None = None
    score_texts: ScoreTexts | None = None


@dataclass(frozen=True)
class RankedPredictions:
    """The tasks' positions, most informative first, and their predictions: in the order they are
    written for a round's queue (`Queue.write_order`, `ahead` of them before their place), else in
    the order the tasks came."""

    order: np.ndarray
    predictions: Sequence[dict]
    ahead: int = 0


@dataclass(frozen=True)
class Queue:
    """A round's own queue, written one task at a time: most informative first, but the validation
    sample's uncoded tasks (`blind`, in the order drawn) at every `every`-th place, without a
    suggestion (storage/validation.py). The tasks a coder may hold locked from earlier versions
    (`early`: worker/front.py) are written right after its first `front` places, with evidence."""

    blind: tuple[int, ...] = ()
    every: int = 0
    front: int = 0
    early: tuple[int, ...] = ()

    def interleaved(self, ranking: Ranking, task_ids: Sequence[int] | None) -> Ranking:
        """`ranking` with the blind tasks moved to places every, 2·every, … (counted from 1; the
        rest of them at the end when the queue runs short), re-scored by place: Label Studio serves
        current predictions by score ascending."""
        at = {task: i for i, task in enumerate(task_ids or ())}
        blind = [at[task] for task in self.blind if task in at]
        if not blind:
            return ranking
        taken = set(blind)
        rest = deque(int(i) for i in ranking.order if int(i) not in taken)
        blind, order = deque(blind), []  # taken from the left: a list's pop(0) was O(N) per place
        while blind or rest:
            due = blind and (not rest or (len(order) + 1) % self.every == 0)
            order.append((blind if due else rest).popleft())
        informativeness = np.empty(len(order))
        informativeness[order] = -np.arange(len(order), dtype=float)
        return Ranking(informativeness, to_prediction_scores(informativeness))

    def ahead(self, order: np.ndarray, task_ids: Sequence[int] | None) -> list[int]:
        """The rows of the `early` tasks in the pool but not among the first `front` places (`order`:
        the queue's rows by place): those written ahead of their place."""
        row = {task: i for i, task in enumerate(task_ids or ())}
        head = {int(i) for i in order[: self.front]}
        return [row[task] for task in dict.fromkeys(self.early) if task in row and row[task] not in head]

    def write_order(self, order: np.ndarray, ahead: list[int]) -> np.ndarray:
        """The queue's rows in the order they are written: its first `front` places, then the rows
        `ahead`, then the rest. Each keeps its place's score: Label Studio serves them in the
        queue's order whatever the order of the writes."""
        if not ahead:
            return order
        taken = set(ahead)
        rest = [int(i) for i in order if int(i) not in taken]
        return np.array([*rest[: self.front], *ahead, *rest[self.front :]])


@dataclass(frozen=True)
class Ranker:
    """QUERY_STRATEGY with its seed, and EVIDENCE_TASKS: how many of the queue's first places carry
    the evidence of their suggested codes (where the form has an evidence tag), besides a queue's
    `early` tasks."""

    strategy: StrategyOptions
    evidence_tasks: int

    def predictions(
        self,
        scheme: CodingScheme,
        model: CodingModel,
        version: str,
        scored: Scored,
        against: RankedPool,
        *,
        queue: Queue | None = None,
    ) -> RankedPredictions:
        """Rank `scored` together with the pool a round ranked (`against`: its labeled vectors, and
        its probabilities for tasks predicted after it, so their scores mean what the round's mean).

        With a `queue` (a round's own pool, written one task at a time) the predictions come in the
        order they are written (`Queue.write_order`) and each task's evidence is found as it is
        written; otherwise (an answer sent at once) in the tasks' order, the evidence found in one
        scoring call."""
        ranking = rank(
            self.strategy,
            scored.proba,
            against.labeled,
            thresholds=model.thresholds,
            ranked_before=against.proba,
        )
        if queue is not None:
            ranking = queue.interleaved(ranking, scored.task_ids)
        places = ranking.order if queue is not None else np.arange(len(scored.proba))
        ahead = queue.ahead(places, scored.task_ids) if queue is not None else []
        positions = queue.write_order(places, ahead) if queue is not None else places
        proba = scored.proba[positions]
        ids = None if scored.task_ids is None else [scored.task_ids[i] for i in positions]
        predictions = build_predictions(
            scheme, model.thresholds, version, proba, ranking.scores[positions], task_ids=ids
        )
        blind = np.isin(ids or [], queue.blind if queue is not None else [])
        predictions = without_suggestion(scheme, predictions, np.flatnonzero(blind))
        explained = self._explained(places, positions, ids, queue.early if queue is not None else ())
        if scheme.evidence is None or not len(explained) or scored.score_texts is None:
            return RankedPredictions(ranking.order, predictions, len(ahead))
        texts = [scored.texts[positions[i]] for i in explained]
        suggested = model.decide(proba[explained]) & scheme.evidence_mask()
        if blind.any():
            suggested[blind[explained]] = False  # a validation task shows no evidence either
        find = spans_of_each if queue is not None else spans_of_all
        spans_of = find(texts, proba[explained], suggested, scored.score_texts)
        evidenced = WithEvidence(scheme, predictions, spans_of, explained)
        return RankedPredictions(ranking.order, evidenced, len(ahead))

    def _explained(
        self, places: np.ndarray, positions: np.ndarray, ids: Sequence[int] | None, early: Sequence[int]
    ) -> np.ndarray:
        """Which predictions (in the order written) get evidence: those of the first EVIDENCE_TASKS
        places and of the `early` tasks (none when EVIDENCE_TASKS is 0)."""
        if not self.evidence_tasks:
            return np.array([], dtype=int)
        chosen = np.isin(positions, places[: self.evidence_tasks])
        if ids is not None and early:
            chosen |= np.isin(ids, list(early))
        return np.flatnonzero(chosen)


def ranker_of(settings: ModelSettings) -> Ranker:
    return Ranker(settings.strategy_options(), settings.evidence_tasks)
