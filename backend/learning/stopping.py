"""The stopping signal: do more labels still change what the model decides on the unlabeled tasks?"""

from __future__ import annotations

import numpy as np

Decisions = tuple[np.ndarray, np.ndarray]  # task ids, decisions (tasks × codes)


def stopping_signal(previous: Decisions, current: Decisions, threshold: float) -> dict | None:
    """Compare the code decisions of two rounds on the tasks unlabeled in both.

    The signal is small-text's ClassificationChange on whole code sets: stop when at most
    `threshold` of those tasks changed theirs. None when the rounds share no task. Its rule is
    written out here, and a test holds it to small-text's: importing small-text imports torch
    (0.35 GB and ten seconds the first time), which the fast lane that makes this signal never
    needs otherwise.
    """
    previous_ids, previous_decisions = previous
    ids, decisions = current
    common, before, now = np.intersect1d(previous_ids, ids, return_indices=True)
    if not len(common) or previous_decisions.shape[1] != decisions.shape[1]:
        return None
    before, now = previous_decisions[before], decisions[now]
    changed = int((before != now).any(axis=1).sum())
    return {
        "tasks_compared": len(common),
        "changed": changed,
        "changed_share": changed / len(common),
        "threshold": threshold,
        "stop": len(common) - changed >= len(common) * (1 - threshold),  # ClassificationChange's test
    }
