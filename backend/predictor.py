"""Predictions for tasks with the serving model version, scored against the last round's pool.

A round caches the pool's probabilities and the labeled code vectors beside the version
(``pool.npz``). New tasks are ranked together with that pool, so their prediction scores mean
the same as those the round wrote: lower = more informative.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from backend.config import Settings
from backend.model import CodingModel
from backend.scheduler import read_state
from backend.scheme import CodingScheme
from backend.strategies import score_pool, to_prediction_scores
from backend.versions import ModelStore, ModelVersion

log = logging.getLogger(__name__)
POOL_FILE = "pool.npz"


def save_pool(
    version: ModelVersion, task_ids, proba: np.ndarray, labeled: np.ndarray, decisions: np.ndarray
) -> None:
    """Remember what the round ranked and decided, to rank later tasks and compare rounds."""
    ids = np.asarray(task_ids, dtype=np.int64)
    _write_pool(version, {"task_ids": ids, "proba": proba, "labeled": labeled, "decisions": decisions})


def add_to_pool(version: ModelVersion, task_ids, proba: np.ndarray, decisions: np.ndarray) -> None:
    """Record tasks predicted after the round (imported since) as ranked by its version."""
    pool = _read_pool(version)
    if pool is None:  # a version saved without a pool (nothing was unlabeled then)
        empty = np.zeros((0, proba.shape[1]))
        pool = {"task_ids": np.zeros(0, dtype=np.int64), "proba": empty, "labeled": empty, "decisions": empty}
    pool["task_ids"] = np.concatenate([pool["task_ids"], np.asarray(task_ids, dtype=np.int64)])
    pool["proba"] = np.vstack([pool["proba"], proba])
    pool["decisions"] = np.vstack([pool["decisions"], decisions])
    _write_pool(version, pool)


def ranked_task_ids(version: ModelVersion) -> set[int]:
    """The tasks the version has predicted (empty when it recorded none)."""
    pool = _read_pool(version)
    return set() if pool is None else {int(task_id) for task_id in pool["task_ids"]}


def load_decisions(version: ModelVersion) -> tuple[np.ndarray, np.ndarray] | None:
    """The round's unlabeled task ids and their code decisions; None when not recorded."""
    pool = _read_pool(version)
    return (pool["task_ids"], pool["decisions"]) if pool is not None and "decisions" in pool else None


def load_pool(version: ModelVersion, num_codes: int) -> tuple[np.ndarray, np.ndarray]:
    """The round's pool probabilities and labeled code vectors (empty when the round had no pool)."""
    pool = _read_pool(version)
    if pool is None:
        return np.zeros((0, num_codes)), np.zeros((0, num_codes))
    return pool["proba"], pool["labeled"]


def _read_pool(version: ModelVersion) -> dict[str, np.ndarray] | None:
    path = Path(version.path) / POOL_FILE
    if not path.exists():
        return None
    with np.load(path) as cached:
        return dict(cached)


def _write_pool(version: ModelVersion, pool: dict[str, np.ndarray]) -> None:
    """Write, then rename: a reader (or a crash) never sees half a pool."""
    path = Path(version.path) / POOL_FILE
    partial = path.with_name(f".{POOL_FILE}")
    with open(partial, "wb") as handle:
        np.savez(handle, **pool)
    partial.replace(path)


def prediction_scores(
    pool: tuple[np.ndarray, np.ndarray], model: CodingModel, proba: np.ndarray, settings: Settings
) -> np.ndarray:
    """Label Studio prediction scores for new rows, ranked together with the round's pool."""
    pool_proba, labeled = pool
    informativeness = score_pool(
        settings.query_strategy,
        np.vstack([pool_proba, proba]),
        labeled,
        thresholds=model.thresholds,
        seed=settings.seed,
    )
    return to_prediction_scores(informativeness)[len(pool_proba) :]


class Predictor:
    """Serves predictions with each project's current version, loaded once per process."""

    def __init__(self, settings: Settings, store: ModelStore):
        self.settings = settings
        self.store = store
        self._loaded: dict[str, tuple[ModelVersion, CodingModel, tuple[np.ndarray, np.ndarray]]] = {}
        self._lock = threading.Lock()

    def current(self, project: str) -> tuple[ModelVersion, CodingModel, tuple[np.ndarray, np.ndarray]] | None:
        """The project's serving version, its model and its round's pool; None before the first round."""
        name = read_state(self.store.root, project).get("current_version")
        if not name:
            return None
        with self._lock:
            loaded = self._loaded.get(project)
            if loaded is None or loaded[0].name != name:
                version = self.store.get(project, name)
                log.info("project %s: loading model version %s", project, name)
                model = self.store.load(version, device=self.settings.resolved_device())
                loaded = (version, model, load_pool(version, len(model.codes)))
                self._loaded[project] = loaded
            return loaded

    def predict(self, project: str, scheme: CodingScheme, tasks: list[dict]) -> list[dict]:
        """One Label Studio prediction per task, in order (empty results before the first round)."""
        current = self.current(project)
        if current is None:
            return [{"result": [], "score": 0.0, "model_version": "untrained"} for _ in tasks]
        version, model, pool = current
        if model.codes != scheme.codes:
            log.warning(
                "project %s: label config changed since %s; predictions skipped", project, version.name
            )
            return [{"result": [], "score": 0.0, "model_version": version.name} for _ in tasks]
        proba = model.predict_proba([scheme.text_of(task) for task in tasks])
        scores = prediction_scores(pool, model, proba, self.settings)
        return [
            {
                "result": scheme.prediction_result(row, model.thresholds),
                "score": round(float(score), 6),
                "model_version": version.name,
            }
            for row, score in zip(proba, scores, strict=True)
        ]
