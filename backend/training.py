"""One active-learning round for one project: fetch → train → predict → score → write back → switch.

Run as ``python -m backend.training PROJECT`` by the scheduler (never inside a request). The
labeled data always comes from Label Studio. A round that fails leaves the serving version,
its predictions and the queue as they were; the new version is switched to only after Label
Studio confirmed every prediction.

Who coded what: see ``annotations.py`` (TRAIN_CODERS, MULTI_CODER_RULE). Each round also
refreshes the project's monitoring (``monitoring.py``, ``agreement.py``) in its state, which
`/metrics` shows, and records itself in MLflow (``tracking.py``).
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from backend.agreement import agreement
from backend.annotations import coder_answers, training_examples
from backend.config import Settings, load_settings
from backend.logs import setup_logging
from backend.model import CodingModel, train_model
from backend.monitoring import cross_validated_report, label_counts, rare_codes, stopping_signal
from backend.predictor import load_decisions, load_pool, prediction_scores, save_pool
from backend.scheduler import read_state, update_state, work_off
from backend.scheme import CodingScheme, label_matrix, parse_label_config
from backend.strategies import score_pool, to_prediction_scores
from backend.studio import StudioClient, StudioError, Task
from backend.tracking import log_agreement, log_round
from backend.versions import ModelStore

log = logging.getLogger(__name__)
ROUND_HISTORY = 20


@dataclass(frozen=True)
class LabeledSet:
    task_ids: list[int]
    texts: list[str]
    matrix: np.ndarray
    coders: list[tuple[str, ...]]

    def coder_counts(self) -> dict[str, int]:
        """Training examples each coder's annotations contributed to."""
        return dict(Counter(coder for coders in self.coders for coder in coders).most_common())


def labeled_set(
    tasks: list[Task], scheme: CodingScheme, emails: Mapping[int, str], settings: Settings
) -> LabeledSet:
    """Training examples of the annotated tasks under TRAIN_CODERS and MULTI_CODER_RULE."""
    examples, blank = training_examples(
        tasks, scheme, emails, rule=settings.multi_coder_rule, coders=settings.train_coders
    )
    if blank:
        log.warning("left out %d annotated task(s) with an empty text", blank)
    matrix = label_matrix([e.codes for e in examples], scheme.codes).reshape(len(examples), len(scheme.codes))
    return LabeledSet([e.task_id for e in examples], [e.text for e in examples], matrix,
                      [e.coders for e in examples])  # fmt: skip


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
        annotated = list(self.studio.tasks(int(self.project), annotated=True))
        emails = self._user_emails()
        labeled = labeled_set(annotated, scheme, emails, self.settings)
        watch = {
            **self.check_agreement(annotated, scheme, emails),
            **self.check_labels(labeled, scheme.codes),
        }
        if len(labeled.texts) < self.settings.min_annotations_to_train:
            log.info(
                "project %s: %d training examples, waiting for %d",
                self.project,
                len(labeled.texts),
                self.settings.min_annotations_to_train,
            )
            return {
                **watch,
                "labeled": len(labeled.texts),
                "waiting_for": self.settings.min_annotations_to_train,
            }
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
            **watch,
            "labeled": len(labeled.texts),
            "last_training_seconds": round(seconds, 2),
            "current_version": version.name,
            "waiting_for": None,
            "quality": self.estimate_quality(model, labeled, scheme.codes),
            "stopping": self.check_stopping(previous, version.name),
        }
        update_state(self.store.root, self.project, **summary)  # the new version goes live in one step
        if previous and previous != version.name:
            self._delete_old(previous)
        log_round(self.settings, self.project, version.name, summary, ranked_task_ids=ranked)
        return summary

    # --- monitoring -----------------------------------------------------------------------------

    def _user_emails(self) -> dict[int, str]:
        """Coders' emails; without them (a token that may not list users) coders are user ids."""
        try:
            return self.studio.user_emails()
        except StudioError as exc:
            log.warning("project %s: coders are named by user id (%s)", self.project, exc)
            return {}

    def check_agreement(self, annotated: list[Task], scheme: CodingScheme, emails: Mapping[int, str]) -> dict:
        """Inter-coder agreement over all coders; recorded in MLflow whenever it changed."""
        answers = {task.id: coder_answers(task, scheme, emails) for task in annotated}
        figures = json.loads(json.dumps(agreement(answers, scheme.codes)))
        if figures["tasks"] and figures != read_state(self.store.root, self.project).get("agreement"):
            log_agreement(self.settings, self.project, figures)
        return {"agreement": figures}

    def check_labels(self, labeled: LabeledSet, codes: list[str]) -> dict:
        """Label counts per code and coder; codes too rare to learn are flagged in the log."""
        rare = rare_codes(labeled.matrix, codes, self.settings.min_positives_per_code)
        if rare:
            log.warning("project %s: too few positives to learn (fewer than %d): %s", self.project,
                        self.settings.min_positives_per_code, rare)  # fmt: skip
        return {
            "label_counts": label_counts(labeled.matrix, codes),
            "rare_codes": rare,
            "coders": labeled.coder_counts(),
            "labeled_tasks": len(set(labeled.task_ids)),
        }

    def estimate_quality(self, model: CodingModel, labeled: LabeledSet, codes: list[str]) -> dict | None:
        """Cross-validated per-code figures (SetFit models; see monitoring.CV_METHOD)."""
        if not hasattr(model, "embed"):
            return None
        report = cross_validated_report(model.embed(labeled.texts), labeled.matrix, codes, model.thresholds,
                                        self.settings)  # fmt: skip
        log.info("project %s: cross-validated macro-F1 %s over %d code(s)", self.project,
                 report["macro"]["f1"], report["codes_estimated"])  # fmt: skip
        return report

    def check_stopping(self, previous: str | None, current: str) -> dict | None:
        """Did the new version change the code decisions of the unlabeled tasks? (stopping signal)"""
        if not previous:
            return None
        before = load_decisions(self.store.get(self.project, previous))
        now = load_decisions(self.store.get(self.project, current))
        if before is None or now is None:
            return None
        signal = stopping_signal(before, now, self.settings.stopping_change_threshold)
        if signal and signal["stop"]:
            log.info("project %s: stopping signal: %d of %d unlabeled tasks changed codes since %s",
                     self.project, signal["changed"], signal["tasks_compared"], previous)  # fmt: skip
        return signal

    # --- write-back -----------------------------------------------------------------------------

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
        save_pool(self.store.get(self.project, version), [task.id for task in pool], proba, labeled,
                  model.decide(proba))  # fmt: skip
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
