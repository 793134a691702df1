"""The one prediction builder: a segment's probabilities → a Label Studio prediction.

Used for write-back (with the task id) and for `/predict` answers (without). Each ``<Choices>`` tag
gets one result item: a multiple-choice tag every option over its threshold, a single-choice tag
its most probable option. A tag with a "none of these" option (domain/scheme.py) gets that option
when none of its codes is predicted, so a yes/no question is answered either way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from backend.domain.scheme import CodingScheme


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


def build_predictions(
    scheme: CodingScheme,
    thresholds: np.ndarray,
    version: str,
    proba: np.ndarray,
    scores: np.ndarray,
    task_ids: Sequence[int] | None = None,
) -> list[dict]:
    """One prediction per row of `proba`, scored with `scores` (the queue order: lowest first).

    With `task_ids` each prediction names its task (for import); without, it is a `/predict` answer.
    """
    built = []
    for i, (row, score) in enumerate(zip(proba, scores, strict=True)):
        item = {
            "result": result_items(scheme, row, thresholds),
            "score": round(float(score), 6),
            "model_version": version,
        }
        if task_ids is not None:
            item["task"] = int(task_ids[i])
        built.append(item)
    return built


def empty_predictions(version: str, count: int) -> list[dict]:
    """Answers for tasks there is no model for yet (before the first round, or after the codes changed)."""
    return [{"result": [], "score": 0.0, "model_version": version} for _ in range(count)]
