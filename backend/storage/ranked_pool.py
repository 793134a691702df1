"""What a version's round ranked and decided: ``<version>/pool.npz``.

A round keeps the pool's task ids, probabilities and code decisions, and the labeled code vectors,
beside its version. Tasks predicted later with that version are ranked together with this pool
(so their scores mean what the round's scores mean) and appended to it (so they are predicted
once); two rounds' decisions give the stopping signal. This module is its only reader and writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.storage.atomic import write_with
from backend.storage.layout import VERSION_POOL


@dataclass(frozen=True)
class RankedPool:
    """Tasks a version ranked: ids, probabilities (tasks × codes), decisions, and the labeled vectors."""

    task_ids: np.ndarray
    proba: np.ndarray
    decisions: np.ndarray
    labeled: np.ndarray

    @classmethod
    def empty(cls, num_codes: int, labeled: np.ndarray | None = None) -> RankedPool:
        """No task ranked yet (against `labeled` vectors, if given)."""
        nothing = np.zeros((0, num_codes))
        return cls(np.zeros(0, dtype=np.int64), nothing, nothing, nothing if labeled is None else labeled)

    def ids(self) -> set[int]:
        return {int(task_id) for task_id in self.task_ids}

    def with_tasks(self, task_ids, proba: np.ndarray, decisions: np.ndarray) -> RankedPool:
        """This pool plus tasks predicted after the round (the labeled vectors stay as they were)."""
        return RankedPool(
            np.concatenate([self.task_ids, np.asarray(task_ids, dtype=np.int64)]),
            np.vstack([self.proba, proba]),
            np.vstack([self.decisions, decisions]),
            self.labeled,
        )


def read_ranked_pool(version_path: Path) -> RankedPool | None:
    """The version's pool; None when it has none (nothing was unlabeled at its round)."""
    path = Path(version_path) / VERSION_POOL
    if not path.exists():
        return None
    with np.load(path) as cached:
        return RankedPool(cached["task_ids"], cached["proba"], cached["decisions"], cached["labeled"])


def write_ranked_pool(version_path: Path, pool: RankedPool) -> None:
    """Write atomically: a reader (or a crash) never sees half a pool."""
    arrays = {
        "task_ids": np.asarray(pool.task_ids, dtype=np.int64),
        "proba": pool.proba,
        "decisions": pool.decisions,
        "labeled": pool.labeled,
    }
    write_with(Path(version_path) / VERSION_POOL, lambda handle: np.savez(handle, **arrays))
