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

import contextlib
import ctypes
import gc
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
from backend.bodies import Bodies, embeddings_dir
from backend.config import Settings, load_settings
from backend.embeddings import EmbeddingCache
from backend.logs import setup_logging
from backend.model import CodingModel, SetFitCodingModel, refit_head, train_model
from backend.monitoring import cross_validated_report, label_counts, rare_codes, stopping_signal
from backend.pool import PoolFile
from backend.predictor import (
    add_to_pool,
    load_decisions,
    load_pool,
    prediction_scores,
    ranked_task_ids,
    save_pool,
)
from backend.scheduler import (
    LANES,
    STATUS_FIELDS,
    Scheduler,
    lane_busy,
    lane_of,
    pending_kinds,
    read_state,
    update_state,
    work_off,
)
from backend.scheme import CodingScheme, label_matrix, parse_label_config
from backend.strategies import score_pool, to_prediction_scores
from backend.studio import StudioClient, StudioError, Task
from backend.tracking import log_agreement, log_round
from backend.versions import ModelStore, ModelVersion
from backend.writeback import IncompleteImport, write_version

log = logging.getLogger(__name__)


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
    """The work of one project, with its collaborators injected (one instance per worker process)."""

    def __init__(
        self,
        project: str,
        settings: Settings,
        studio: StudioClient,
        store: ModelStore,
        scheduler: Scheduler | None = None,
    ):
        self.project = str(project)
        self.settings = settings
        self.studio = studio
        self.store = store
        self.scheduler = scheduler or Scheduler(store.root)
        self.bodies = Bodies(self.project, settings, store)
        self.pool = PoolFile(store.root, self.project)
        self.annotated_ids: set[int] = set()

    def run(self, kind: str) -> None:
        """Run one kind of work (see scheduler.LANES) and record its outcome in the project's state."""
        started = datetime.now(UTC)
        status, error = STATUS_FIELDS[lane_of(kind)]
        update_state(
            self.store.root, self.project, **{status: "predicting" if kind == "predict" else "training"}
        )
        work = {"train": self.after_annotations, "predict": self.predict_new, "body": self.train_body}[kind]
        try:
            summary, outcome = work(), "ok"
        except Exception as exc:
            log.exception("project %s: %s round failed", self.project, kind)
            summary, outcome = {error: f"{type(exc).__name__}: {exc}"}, "failed"
        finished = datetime.now(UTC)
        entry = {"kind": kind, "outcome": outcome, "started_at": started.isoformat(),
                 "finished_at": finished.isoformat()}  # fmt: skip
        if outcome == "ok":
            summary.setdefault(error, None)
        state = {status: "idle" if outcome == "ok" else "failed"}
        update_state(self.store.root, self.project, add_round=entry, **state, **summary)
        log.info("project %s: %s round %s in %.1f s", self.project, kind, outcome,
                 (finished - started).total_seconds())  # fmt: skip

    def after_annotations(self) -> dict:
        """The round that follows annotations: a head refit (two-speed loop) or a full round."""
        return self.refresh() if self.settings.two_speed else self.train()

    def labeled_data(self, monitor: bool = True) -> tuple[CodingScheme, LabeledSet, dict]:
        """The label config, the training examples and (`monitor`) agreement and label counts."""
        scheme = parse_label_config(self.studio.label_config(int(self.project)))
        annotated = list(self.studio.tasks(int(self.project), annotated=True))
        self.annotated_ids = {task.id for task in annotated}
        emails = self._user_emails()
        labeled = labeled_set(annotated, scheme, emails, self.settings)
        if not monitor:
            return scheme, labeled, {}
        watch = {
            **self.check_agreement(annotated, scheme, emails),
            **self.check_labels(labeled, scheme.codes),
        }
        return scheme, labeled, watch

    def waiting(self, labeled: LabeledSet, watch: dict | None = None) -> dict | None:
        """The summary of a round that waits for more examples; None when there are enough."""
        if len(labeled.texts) >= self.settings.min_annotations_to_train:
            return None
        log.info("project %s: %d training examples, waiting for %d", self.project, len(labeled.texts),
                 self.settings.min_annotations_to_train)  # fmt: skip
        return {**(watch or {}), "labeled": len(labeled.texts),
                "waiting_for": self.settings.min_annotations_to_train}  # fmt: skip

    # --- the fast loop: a head on the current body --------------------------------------------

    def refresh(self) -> dict:
        """Refit the head on cached embeddings of the current body, then re-rank and write back."""
        scheme, labeled, watch = self.labeled_data()
        if (waiting := self.waiting(labeled, watch)) is not None:
            return waiting
        body = self.bodies.current(scheme.codes)
        pool = self.pool.tasks(self.studio, self.annotated_ids)
        started = time.perf_counter()
        labeled_embeddings = body.embed(labeled.texts)
        pool_texts = [scheme.text_in(task.data) for task in pool]
        pool_embeddings = body.embed(pool_texts)
        model = refit_head(
            body.model, body.source, labeled_embeddings, labeled.matrix, scheme.codes, self.settings
        )
        proba = model.head_proba(pool_embeddings)
        proba[[i for i, text in enumerate(pool_texts) if not text.strip()]] = 0.0
        seconds = time.perf_counter() - started
        version = self.save(model, labeled, seconds, "head", body=body.name)
        summary = self.publish(
            scheme, model, version, labeled, pool, proba, seconds, watch, labeled_embeddings
        )
        self.request_body_when_due(len(labeled.texts))
        return summary

    def request_body_when_due(self, labeled: int, idle: bool = False) -> bool:
        """Ask the background lane to fine-tune a body: the first time, after BODY_RETRAIN_EVERY new
        examples, or (idle) when the project rests with any new ones."""
        state = read_state(self.store.root, self.project)
        new = labeled - int(state.get("body_labeled") or 0)
        due = labeled >= self.settings.min_annotations_to_train and (
            not state.get("body_version") or new >= self.settings.body_retrain_every or (idle and new > 0)
        )
        if (
            due
            and "body" not in pending_kinds(self.store.root, self.project)
            and not self.body_lane_busy(state)
        ):
            log.info("project %s: %d new example(s) since the last body: fine-tuning one", self.project, new)
            self.scheduler.request(self.project, "body")
        return due

    def body_lane_busy(self, state: dict) -> bool:
        """Whether a body is being fine-tuned; corrects a state.json left at 'training' by a process
        that was killed (out of memory, a restart) while no one was there to record it."""
        if lane_busy(self.store.root, self.project, "body"):
            return True
        if state.get("body_state") == "training":
            reason = "the fine-tuning process ended without finishing (killed?)"
            log.warning("project %s: %s; starting another", self.project, reason)
            update_state(self.store.root, self.project, body_state="failed", body_error=reason)
        return False

    def when_idle(self) -> None:
        """Called by a lingering worker when no annotation came for BODY_RETRAIN_IDLE_SECONDS."""
        if self.settings.two_speed:
            labeled = read_state(self.store.root, self.project).get("labeled")
            if isinstance(labeled, int):
                self.request_body_when_due(labeled, idle=True)

    # --- the background lane: fine-tune a body ------------------------------------------------

    def train_body(self) -> dict:
        """Fine-tune a SetFit body on all labels and embed the pool with it; the fast loop switches."""
        import torch

        torch.set_num_threads(self.settings.body_threads)
        scheme, labeled, _ = self.labeled_data(monitor=False)
        if self.waiting(labeled) is not None:
            return {}
        started = time.perf_counter()
        model = train_model(labeled.texts, labeled.matrix, scheme.codes, self.settings)
        seconds = time.perf_counter() - started
        version = self.save(model, labeled, seconds, "body")
        release_memory()
        pool = self.pool.refresh(self.studio).values()
        cache = EmbeddingCache(embeddings_dir(self.store, self.project, version.name, self.settings))
        cache.embed([scheme.text_in(data) for data in pool] + labeled.texts, model.embed)
        summary = {"body_version": version.name, "body_labeled": len(labeled.texts),
                   "last_body_seconds": round(seconds, 2)}  # fmt: skip
        update_state(self.store.root, self.project, **summary)
        self.scheduler.request(self.project, "train")  # the fast loop takes the new body
        return summary

    # --- a full round (MODEL_KIND=transformer, a differentiable head, or FAST_LOOP=false) -------

    def train(self) -> dict:
        scheme, labeled, watch = self.labeled_data()
        if (waiting := self.waiting(labeled, watch)) is not None:
            return waiting
        started = time.perf_counter()
        model = train_model(labeled.texts, labeled.matrix, scheme.codes, self.settings)
        seconds = time.perf_counter() - started
        version = self.save(model, labeled, seconds, "full")
        try:
            self.pool.refresh(self.studio)
            pool = self.pool.tasks(self.studio, self.annotated_ids)
            proba = model.predict_proba([scheme.text_in(task.data) for task in pool])
        except Exception:
            self._discard(version.name)
            raise
        embeddings = model.embed(labeled.texts) if isinstance(model, SetFitCodingModel) else None
        return self.publish(scheme, model, version, labeled, pool, proba, seconds, watch, embeddings)

    # --- write-back -----------------------------------------------------------------------------

    def publish(self, scheme, model, version, labeled, pool, proba, seconds, watch, embeddings) -> dict:
        """Rank the pool, write the version to Label Studio queue head first, record the round."""
        informativeness = score_pool(self.settings.query_strategy, proba, labeled.matrix,
                                     thresholds=model.thresholds, seed=self.settings.seed)  # fmt: skip
        order = np.argsort(-informativeness, kind="stable")
        scores = to_prediction_scores(informativeness)
        ranked = [pool[i] for i in order]
        predictions = self.predictions(scheme, model, version.name, ranked, proba[order], scores[order])
        save_pool(version, [task.id for task in pool], proba, labeled.matrix, model.decide(proba))
        previous = read_state(self.store.root, self.project).get("current_version")
        summary = {**watch, "labeled": len(labeled.texts), "last_training_seconds": round(seconds, 2),
                   "current_version": version.name, "waiting_for": None, "complete": False}  # fmt: skip
        live = False

        def go_live() -> None:
            nonlocal live
            live = True
            update_state(self.store.root, self.project, **summary)

        try:
            complete = write_version(
                self.studio, int(self.project), version.name, predictions,
                first=self.settings.write_first, on_live=go_live, interrupted=self.newer_work_waits,
                rest_after=self.settings.write_rest_after_seconds,
            )  # fmt: skip
        except Exception as exc:
            if isinstance(exc, IncompleteImport):
                self.pool.forget()  # a task may be gone: list the pool afresh next time
            if not live:
                self._discard(version.name)
            raise
        summary |= {"complete": complete, "quality": self.estimate_quality(model, labeled, embeddings),
                    "stopping": self.check_stopping(previous, version.name)}  # fmt: skip
        log_round(self.settings, self.project, version.name, summary, ranked_task_ids=[t.id for t in ranked])
        return summary

    def newer_work_waits(self) -> bool:
        return bool(pending_kinds(self.store.root, self.project, "fast"))

    def save(
        self, model: CodingModel, labeled: LabeledSet, seconds: float, kind: str, **extra
    ) -> ModelVersion:
        """Save a version with what it was trained on ('head', 'body' or 'full' round)."""
        state = read_state(self.store.root, self.project)
        serving = [state.get("current_version"), state.get("body_version")]
        return self.store.save(self.project, model, n_labeled=len(labeled.texts), training_seconds=seconds,
                               config=self.settings.public(), extra={"round": kind, **extra},
                               keep_also=[name for name in serving if name])  # fmt: skip

    def predictions(self, scheme, model, version: str, tasks: list[Task], proba, scores) -> list[dict]:
        return [
            {
                "task": task.id,
                "model_version": version,
                "score": round(float(score), 6),
                "result": scheme.prediction_result(row, model.thresholds),
            }
            for task, row, score in zip(tasks, proba, scores, strict=True)
        ]

    def _discard(self, version: str) -> None:
        """Undo a version that never went live: its predictions in Label Studio and its files."""
        try:
            self.studio.delete_version(int(self.project), version)
        except Exception:
            log.warning(
                "project %s: could not delete predictions of discarded version %s", self.project, version
            )
        shutil.rmtree(self.store.get(self.project, version).path, ignore_errors=True)

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

    def estimate_quality(self, model: CodingModel, labeled: LabeledSet, embeddings) -> dict | None:
        """Cross-validated per-code figures (SetFit models; see monitoring.CV_METHOD)."""
        if embeddings is None:
            return None
        report = cross_validated_report(
            embeddings, labeled.matrix, model.codes, model.thresholds, self.settings
        )
        log.info("project %s: cross-validated macro-F1 %s over %d code(s)", self.project,
                 report["macro"]["f1"], report["codes_estimated"])  # fmt: skip
        return report

    def check_stopping(self, previous: str | None, current: str) -> dict | None:
        """Did the new version change the code decisions of the unlabeled tasks? (stopping signal)"""
        if not previous or not any(v.name == previous for v in self.store.versions(self.project)):
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

    # --- predictions for new tasks --------------------------------------------------------------

    def predict_new(self) -> dict:
        """Predict the tasks the serving version has not ranked (imported since its round), ranked
        against its pool. Tasks it ranked but has not written yet are left to its own write-back."""
        version = read_state(self.store.root, self.project).get("current_version")
        if not version:
            return {}
        current = self.store.get(self.project, version)
        ranked = ranked_task_ids(current)
        scheme = parse_label_config(self.studio.label_config(int(self.project)))
        unlabeled = self.studio.tasks(int(self.project), annotated=False, data_only=True)
        missing = [task for task in unlabeled if task.id not in ranked]
        if not missing:
            return {}
        self.pool.add(missing)
        model = self.store.load(current, device=self.settings.resolved_device())
        if model.codes != scheme.codes:
            log.warning("project %s: the codes changed since %s; new tasks wait for the next round",
                        self.project, version)  # fmt: skip
            return {}
        proba = model.predict_proba([scheme.text_in(task.data) for task in missing])
        scores = prediction_scores(load_pool(current, len(model.codes)), model, proba, self.settings)
        predictions = self.predictions(scheme, model, version, missing, proba, scores)
        write_version(self.studio, int(self.project), version, predictions, first=len(predictions),
                      on_live=lambda: None)  # fmt: skip
        add_to_pool(current, [task.id for task in missing], proba, model.decide(proba))
        log.info("project %s: predicted %d new task(s) with %s", self.project, len(missing), version)
        return {}


def release_memory() -> None:
    """Hand memory freed after training back to the system (glibc keeps it otherwise)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the child process: work off the project's pending requests in one lane."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2) or (len(args) == 2 and args[1] not in LANES):
        print(f"usage: python -m backend.training PROJECT [{'|'.join(LANES)}]", file=sys.stderr)
        return 2
    project, lane = args[0], args[1] if len(args) == 2 else "fast"
    settings = load_settings()
    setup_logging(settings.log_level)
    key = settings.label_studio_api_key.get_secret_value() if settings.label_studio_api_key else ""
    try:
        studio = StudioClient(settings.label_studio_url, key)
    except Exception as exc:
        update_state(settings.model_dir, project, state="failed", last_error=str(exc))
        log.error("project %s: %s", project, exc)
        return 1
    job = Round(project, settings, studio, ModelStore(settings.model_dir, settings.keep_versions))
    linger = settings.worker_idle_seconds if lane == "fast" else 0
    work_off(settings.model_dir, project, job.run, lane=lane, linger=linger, on_idle=job.when_idle,
             idle_after=settings.body_retrain_idle_seconds)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
