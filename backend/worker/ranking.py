"""Rank → predictions → evidence: the one way a model's probabilities become Label Studio
predictions, for a round's pool, for tasks imported since, and for `/predict` answers."""

from __future__ import annotations

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

    texts: Sequence[str]  # or an array of them
    proba: np.ndarray
    task_ids: np.ndarray | None = None
    score_texts: ScoreTexts | None = None


@dataclass(frozen=True)
class RankedPredictions:
    """The tasks' positions, most informative first, and their predictions: in queue order for a
    round's queue (the order they are written), else in the order the tasks came."""

    order: np.ndarray
    predictions: Sequence[dict]


@dataclass(frozen=True)
class Queue:
    """A round's own queue, written one task at a time: most informative first, but the validation
    sample's uncoded tasks (`blind`, in the order drawn) at every `every`-th place, without a
    suggestion (storage/validation.py)."""

    blind: tuple[int, ...] = ()
    every: int = 0

    def interleaved(self, ranking: Ranking, task_ids: np.ndarray | None) -> Ranking:
        """`ranking` with the blind tasks moved to places every, 2·every, … (counted from 1; the
        rest of them at the end when the queue runs short), re-scored by place: Label Studio serves
        current predictions by score ascending. Array operations: a loop over the places took 0.07 s
        of a round at 100,000 tasks."""
        blind = positions_of(np.asarray(self.blind, dtype=np.int64), task_ids)
        if not len(blind):
            return ranking
        order = ranking.order
        rest = order[~np.isin(order, blind)]
        # the k-th blind task takes place k·every once k·(every − 1) of the rest came before it
        regular = int(np.count_nonzero(np.arange(1, len(blind) + 1) * (self.every - 1) <= len(rest)))
        places = np.zeros(len(order), dtype=bool)
        places[np.arange(1, regular + 1) * self.every - 1] = True
        places[len(order) - (len(blind) - regular) :] = True
        order = np.empty(len(order), dtype=np.int64)
        order[places], order[~places] = blind, rest
        informativeness = np.empty(len(order))
        informativeness[order] = -np.arange(len(order), dtype=float)
        return Ranking(informativeness, to_prediction_scores(informativeness))


def positions_of(tasks: np.ndarray, task_ids: np.ndarray | None) -> np.ndarray:
    """The positions in `task_ids` (distinct) of those of `tasks` found there, in the order of `tasks`."""
    if task_ids is None or not len(task_ids) or not len(tasks):
        return np.zeros(0, dtype=np.int64)
    task_ids = np.asarray(task_ids, dtype=np.int64)
    by_id = np.argsort(task_ids, kind="stable")
    found = np.minimum(np.searchsorted(task_ids, tasks, sorter=by_id), len(task_ids) - 1)
    there = task_ids[by_id[found]] == tasks
    return by_id[found[there]]


@dataclass(frozen=True)
class Ranker:
    """QUERY_STRATEGY with its seed, and EVIDENCE_TASKS: how many of the queue's first places carry
    the evidence of their suggested codes (where the form has an evidence tag)."""

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

        With a `queue` (a round's own pool, written one task at a time) the predictions come in queue
        order and each task's evidence is found as it is written; otherwise (an answer sent at once)
        in the tasks' order, the evidence found in one scoring call."""
        ranking = rank(
            self.strategy,
            scored.proba,
            against.labeled,
            thresholds=model.thresholds,
            ranked_before=against.proba,
        )
        if queue is not None:
            ranking = queue.interleaved(ranking, scored.task_ids)
        order = ranking.order  # an argsort of the pool: taken once
        positions = order if queue is not None else np.arange(len(scored.proba))
        proba = scored.proba[positions]
        ids = None if scored.task_ids is None else np.asarray(scored.task_ids)[positions]
        predictions = build_predictions(
            scheme, model.thresholds, version, proba, ranking.scores[positions], task_ids=ids
        )
        blind = np.isin(ids if ids is not None else [], queue.blind if queue is not None else [])
        predictions = without_suggestion(scheme, predictions, np.flatnonzero(blind))
        explained = np.arange(min(self.evidence_tasks, len(positions)))  # the first places
        if scheme.evidence is None or not len(explained) or scored.score_texts is None:
            return RankedPredictions(order, predictions)
        texts = [scored.texts[positions[i]] for i in explained]
        suggested = model.decide(proba[explained]) & scheme.evidence_mask()
        if blind.any():
            suggested[blind[explained]] = False  # a validation task shows no evidence either
        find = spans_of_each if queue is not None else spans_of_all
        spans_of = find(texts, proba[explained], suggested, scored.score_texts)
        evidenced = WithEvidence(scheme, predictions, spans_of, explained)
        return RankedPredictions(order, evidenced)


def ranker_of(settings: ModelSettings) -> Ranker:
    return Ranker(settings.strategy_options(), settings.evidence_tasks)
