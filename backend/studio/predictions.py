"""The one prediction builder: a segment's probabilities → a Label Studio prediction.

Used for write-back (with the task id) and for `/predict` answers (without). Each ``<Choices>`` tag
gets one result item: a multiple-choice tag every option over its threshold, a single-choice tag
its most probable option. A tag with a "none of these" option (domain/scheme.py) gets that option
when none of its codes is predicted, so a yes/no question is answered either way. With a form's
evidence tag, each code's evidence span (learning/evidence.py) becomes a region labelled with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

import numpy as np

from backend.domain.scheme import CodingScheme

log = logging.getLogger(__name__)


class Span(Protocol):
    """A code's evidence in a segment (learning/evidence.py): characters [start, end), the code's
    position in the scheme, and how much removing them drops its probability."""

    start: int
    end: int
    text: str
    code: int
    drop: float


def result_items(scheme: CodingScheme, proba: np.ndarray, thresholds: np.ndarray) -> list[dict]:
    """Label Studio result items for one segment: one per tag, each with its own score.

    A tag's score is the mean confidence of its decisions: max(p, 1 − p) per option for a
    multiple-choice tag; for a single-choice tag the chosen option's probability, or with a "none"
    option the confidence of deciding on the most probable code.
    """
    results, start = [], 0
    for tag in scheme.tags:
        stop = start + len(tag.options)
        p, t = proba[start:stop], thresholds[start:stop]
        best = int(np.argmax(p))
        if tag.multiple:
            chosen = [tag.options[i] for i in np.flatnonzero(p >= t)]
            score = float(np.maximum(p, 1 - p).mean())
        elif tag.none_option is None:
            chosen, score = [tag.options[best]], float(p[best])
        else:
            chosen = [tag.options[best]] if p[best] >= t[best] else []
            score = float(max(p[best], 1 - p[best]))
        if not chosen and tag.none_option is not None:
            chosen = [tag.none_option]
        results.append(
            {
                "from_name": tag.name,
                "to_name": tag.to_name,
                "type": "choices",
                "value": {"choices": chosen},
                "score": round(score, 6),
            }
        )
        start = stop
    return results


def evidence_items(scheme: CodingScheme, spans: Sequence[Span], chosen: Collection[str]) -> list[dict]:
    """Label Studio regions for a segment's evidence spans, each labelled with its code, for the
    codes its prediction `chosen` (none without an evidence tag, or for a code it has no label for)."""
    tag, codes = scheme.evidence, scheme.codes
    if tag is None:
        return []
    to_name = scheme.tags[0].to_name
    shown = [span for span in spans if codes[span.code] in chosen and codes[span.code] in tag.labels]
    return [
        {
            "id": f"evidence-{number}",
            "from_name": tag.name,
            "to_name": to_name,
            "type": "labels",
            "value": {
                "start": span.start,
                "end": span.end,
                "text": span.text,
                "labels": [tag.labels[codes[span.code]]],
            },
            "score": span.drop,
        }
        for number, span in enumerate(shown)
    ]


def build_predictions(
    scheme: CodingScheme,
    thresholds: np.ndarray,
    version: str,
    proba: np.ndarray,
    scores: np.ndarray,
    task_ids: Sequence[int] | None = None,
) -> Sequence[dict]:
    """One prediction per row of `proba`, scored with `scores` (the queue order: lowest first), each
    made when first read (:class:`Built`).

    With `task_ids` each prediction names its task (for import); without, it is a `/predict` answer.
    """
    if len(proba) != len(scores) or (task_ids is not None and len(task_ids) != len(proba)):
        raise ValueError("one probability row, score and task id per prediction")

    def make(i: int) -> dict:
        item = {
            "result": result_items(scheme, proba[i], thresholds),
            "score": round(float(scores[i]), 6),
            "model_version": version,
        }
        if task_ids is not None:
            item["task"] = int(task_ids[i])
        return item

    return Built(make, len(proba))


class Built(Sequence[dict]):
    """Predictions made by `make(i)` when first read, then kept (so changes to one stay). A round
    ranks its whole pool but writes only the queue head (studio/writeback.py): the rest never
    becomes a prediction, which at 100,000 tasks took seconds of every round (docs/benchmarks.md)."""

    def __init__(self, make: Callable[[int], dict], count: int):
        self._make, self._count, self._made = make, count, {}

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self))[index]
        if index not in self._made:
            self._made[index] = self._make(index)
        return self._made[index]


def without_suggestion(scheme: CodingScheme, predictions: Sequence[dict], positions) -> Sequence[dict]:
    """The predictions with those at `positions` emptied: every tag's choices empty, no evidence.
    A blind validation task keeps a current prediction (its place in the queue: its score) but
    shows the coder nothing to agree with."""
    for i in positions:
        predictions[i]["result"] = [
            {"from_name": tag.name, "to_name": tag.to_name, "type": "choices", "value": {"choices": []}}
            for tag in scheme.tags
        ]
    return predictions


class WithEvidence(Sequence[dict]):
    """Predictions of which those at `explained` positions get their evidence regions when first
    read; `spans_of(k)` finds the k-th of them's. A version goes live once its first `WRITE_FIRST`
    predictions are written (studio/writeback.py): only their evidence is found before, the rest's
    while coders already work."""

    def __init__(
        self,
        scheme: CodingScheme,
        predictions: Sequence[dict],
        spans_of: Callable[[int], Sequence[Span]],
        explained: Sequence[int],
    ):
        self._scheme, self._predictions, self._spans_of = scheme, predictions, spans_of
        self._pending = {int(index): k for k, index in enumerate(explained)}

    def __len__(self) -> int:
        return len(self._predictions)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self))[index]
        prediction = self._predictions[index]
        if index in self._pending:
            chosen = set(self._scheme.codes_of(prediction["result"]))
            prediction["result"] = prediction["result"] + evidence_items(
                self._scheme, self._spans(index, self._pending.pop(index)), chosen
            )
        return prediction

    def _spans(self, index: int, k: int) -> Sequence[Span]:
        """A task's spans; none when finding them fails (a prediction without highlights is still one)."""
        try:
            return self._spans_of(k)
        except Exception as exc:
            log.warning("evidence for the prediction at position %d not found: %s", index, exc)
            return ()


def codebook_predictions(
    scheme: CodingScheme, similarity: np.ndarray, check_at: float, version: str, task_ids: Sequence[int]
) -> list[dict]:
    """The codebook start's predictions, rows in queue order (scored by position: first lowest).
    A code is checked only where its similarity to its definition reaches `check_at`; nothing
    else is, not even a "none" option: no model has decided anything yet."""
    built = []
    for position, (row, task_id) in enumerate(zip(similarity, task_ids, strict=True)):
        result, start = [], 0
        for tag in scheme.tags:
            stop = start + len(tag.options)
            chosen = [tag.options[i] for i in np.flatnonzero(row[start:stop] >= check_at)]
            if chosen and not tag.multiple:
                chosen = [tag.options[int(np.argmax(row[start:stop]))]]
            result.append(
                {
                    "from_name": tag.name,
                    "to_name": tag.to_name,
                    "type": "choices",
                    "value": {"choices": chosen},
                }
            )
            start = stop
        built.append(
            {
                "task": int(task_id),
                "result": result,
                "score": round(position / len(task_ids), 6),
                "model_version": version,
            }
        )
    return built


def empty_predictions(version: str, count: int) -> list[dict]:
    """Answers for tasks there is no model for yet (before the first round, or after the codes changed)."""
    return [{"result": [], "score": 0.0, "model_version": version} for _ in range(count)]
