"""One active-learning round for one project: fetch → train → predict → score → write back → switch.

Run as ``python -m backend.training PROJECT`` by the scheduler (never inside a request). The
labeled data always comes from Label Studio. A round that fails leaves the serving version,
its predictions and the queue as they were; the new version is switched to only after Label
Studio confirmed every prediction.

Several annotations on one task: the most recently updated submitted annotation counts
(skipped/cancelled ones never do).
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from backend.config import Settings, load_settings
from backend.logs import setup_logging
from backend.model import CodingModel, train_model
from backend.predictor import load_pool, prediction_scores, save_pool
from backend.scheduler import read_state, update_state, work_off
from backend.scheme import CodingScheme, label_matrix, parse_label_config
from backend.strategies import score_pool, to_prediction_scores
from backend.studio import StudioClient, Task
from backend.tracking import log_round
from backend.versions import ModelStore

log = logging.getLogger(__name__)
ROUND_HISTORY = 20


@dataclass(frozen=True)
class LabeledSet:
    task_ids: list[int]
    texts: list[str]
    matrix: np.ndarray


def counted_annotation(task: Task) -> dict | None:
    """The annotation that counts for a task: the latest submitted (not cancelled) one."""
    submitted = [a for a in task.annotations if not a.get("was_cancelled")]
    if not submitted:
        return None
    return max(
        submitted, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id", 0))
    )


def labeled_set(tasks: list[Task], scheme: CodingScheme) -> LabeledSet:
    """Texts and label matrix of the annotated tasks (blank texts are left out, with a warning)."""
    ids, texts, codes, blank = [], [], [], 0
    for task in tasks:
        annotation = counted_annotation(task)
        if annotation is None:
            continue
        text = scheme.text_in(task.data)
        if not text.strip():
            blank += 1
            continue
        ids.append(task.id)
        texts.append(text)
        codes.append(scheme.codes_of(annotation.get("result") or []))
    if blank:
        log.warning("left out %d annotated task(s) with an empty text", blank)
    return LabeledSet(ids, texts, label_matrix(codes, scheme.codes).reshape(len(ids), len(scheme.codes)))


class Round:
    """The work of one project, with its collaborators injected."""

    def __init__(self, project: str, settings: Settings, studio: StudioClient, store: ModelStore):
        self.project = str(project)
        self.settings = settings
        self.studio = studio
        self.store = store

    def run(self, kind: str) -> None:
        """Run a training round ('train') or predict tasks that have no current prediction ('predict')."""
        started = datetime.now(UTC)
        update_state(self.store.root, self.project, state="training" if kind == "train" else "predicting")
        try:
            summary, outcome = (self.train() if kind == "train" else self.predict_new()), "ok"
        except Exception as exc:
            log.exception("project %s: %s round failed", self.project, kind)
            summary, outcome = {"last_error": f"{type(exc).__name__}: {exc}"}, "failed"
        history = read_state(self.store.root, self.project).get("rounds", [])[-(ROUND_HISTORY - 1) :]
        history.append(
            {
                "kind": kind,
                "outcome": outcome,
                "started_at": started.isoformat(),
                "finished_at": datetime.now(UTC).isoformat(),
            }
        )
        state = "idle" if outcome == "ok" else "failed"
        if outcome == "ok":
            summary.setdefault("last_error", None)
        update_state(self.store.root, self.project, state=state, rounds=history, **summary)
        seconds = (datetime.now(UTC) - started).total_seconds()
        log.info("project %s: %s round %s in %.1f s", self.project, kind, outcome, seconds)

    # --- a training round ---------------------------------------------------------------------

    def train(self) -> dict:
        scheme = parse_label_config(self.studio.label_config(int(self.project)))
        labeled = labeled_set(list(self.studio.tasks(int(self.project), annotated=True)), scheme)
        if len(labeled.texts) < self.settings.min_annotations_to_train:
            log.info(
                "project %s: %d annotated tasks, waiting for %d",
                self.project,
                len(labeled.texts),
                self.settings.min_annotations_to_train,
            )
            return {"labeled": len(labeled.texts), "waiting_for": self.settings.min_annotations_to_train}
        started = time.perf_counter()
        model = train_model(labeled.texts, labeled.matrix, scheme.codes, self.settings)
        seconds = time.perf_counter() - started
        version = self.store.save(
            self.project,
            model,
            n_labeled=len(labeled.texts),
            training_seconds=seconds,
            config=self.settings.public(),
        )
        try:
            pool = list(self.studio.tasks(int(self.project), annotated=False))
            ranked = self.write_back(scheme, model, version.name, labeled.matrix, pool)
        except Exception:
            self._discard(version.name)
            raise
        previous = read_state(self.store.root, self.project).get("current_version")
        summary = {
            "labeled": len(labeled.texts),
            "last_training_seconds": round(seconds, 2),
            "current_version": version.name,
            "waiting_for": None,
        }
        update_state(self.store.root, self.project, **summary)  # the new version goes live in one step
        if previous and previous != version.name:
            self._delete_old(previous)
        log_round(self.settings, self.project, version.name, codes=scheme.codes, labeled=labeled.matrix,
                  training_seconds=seconds, ranked_task_ids=ranked)  # fmt: skip
        return summary

    def write_back(
        self, scheme, model: CodingModel, version: str, labeled: np.ndarray, pool: list[Task]
    ) -> list[int]:
        """Predict and rank every unlabeled task, import, verify the count, then switch.

        Returns the task ids, most informative first.
        """
        texts = [scheme.text_in(task.data) for task in pool]
        proba = model.predict_proba(texts)
        informativeness = score_pool(
            self.settings.query_strategy, proba, labeled, thresholds=model.thresholds, seed=self.settings.seed
        )
        self._import(scheme, model, version, pool, proba, to_prediction_scores(informativeness))
        save_pool(self.store.get(self.project, version), [task.id for task in pool], proba, labeled)
        self.studio.serve_version(int(self.project), version)
        return [pool[i].id for i in np.argsort(-informativeness, kind="stable")]

    def _import(self, scheme, model, version, tasks: list[Task], proba, scores) -> None:
        predictions = [
            {
                "task": task.id,
                "model_version": version,
                "score": round(float(score), 6),
                "result": scheme.prediction_result(row, model.thresholds),
            }
            for task, row, score in zip(tasks, proba, scores, strict=True)
        ]
        created = self.studio.import_predictions(int(self.project), predictions)
        if created != len(predictions):
            raise RuntimeError(
                f"Label Studio created {created} of {len(predictions)} predictions of {version}"
            )

    def _delete_old(self, version: str) -> None:
        """Remove the replaced version's predictions; the new version is live either way."""
        try:
            self.studio.delete_version(int(self.project), version)
        except Exception as exc:
            log.warning(
                "project %s: predictions of old version %s stay for now: %s", self.project, version, exc
            )

    def _discard(self, version: str) -> None:
        """Undo a version that never went live: its predictions in Label Studio and its files."""
        try:
            self.studio.delete_version(int(self.project), version)
        except Exception:
            log.warning(
                "project %s: could not delete predictions of discarded version %s", self.project, version
            )
        shutil.rmtree(self.store.get(self.project, version).path, ignore_errors=True)

    # --- predictions for new tasks --------------------------------------------------------------

    def predict_new(self) -> dict:
        """Give tasks without a prediction of the current version one, ranked against the pool."""
        version = read_state(self.store.root, self.project).get("current_version")
        if not version:
            return {}
        scheme = parse_label_config(self.studio.label_config(int(self.project)))
        missing = [
            task
            for task in self.studio.tasks(int(self.project), annotated=False)
            if not any(p.get("model_version") == version for p in task.predictions)
        ]
        if not missing:
            return {}
        current = self.store.get(self.project, version)
        model = self.store.load(current, device=self.settings.resolved_device())
        if model.codes != scheme.codes:
            log.warning("project %s: the codes changed since %s; new tasks wait for the next round",
                        self.project, version)  # fmt: skip
            return {}
        proba = model.predict_proba([scheme.text_in(task.data) for task in missing])
        scores = prediction_scores(load_pool(current, len(model.codes)), model, proba, self.settings)
        self._import(scheme, model, version, missing, proba, scores)
        log.info("project %s: predicted %d new task(s) with %s", self.project, len(missing), version)
        return {}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the child process: work off the project's pending requests."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m backend.training PROJECT", file=sys.stderr)
        return 2
    settings = load_settings()
    setup_logging(settings.log_level)
    key = settings.label_studio_api_key.get_secret_value() if settings.label_studio_api_key else ""
    try:
        studio = StudioClient(settings.label_studio_url, key)
    except Exception as exc:
        update_state(settings.model_dir, args[0], state="failed", last_error=str(exc))
        log.error("project %s: %s", args[0], exc)
        return 1
    job = Round(args[0], settings, studio, ModelStore(settings.model_dir, settings.keep_versions))
    work_off(settings.model_dir, args[0], job.run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
