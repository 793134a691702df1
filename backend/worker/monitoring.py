"""What each round measures for the project lead: agreement, label counts, rare codes, quality, and
the stopping signal. Figures come from `domain` and `learning`; this module gathers them for the
state (`/metrics`), the log and MLflow."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np

from backend.domain.agreement import agreement, model_agreement
from backend.domain.annotations import CoderAnswer, answers_by_task
from backend.domain.coders import CoderNames
from backend.learning.base import CodingModel
from backend.learning.heads import HeadOptions, threshold_rule
from backend.learning.quality import cross_validated_report, label_counts, out_of_fold_decisions, rare_codes
from backend.learning.stopping import stopping_signal
from backend.storage.ranked_pool import RankedPool
from backend.storage.state import Monitoring, RoundFigures, now
from backend.tracking.project import ProjectTracker
from backend.worker.bias import project_report
from backend.worker.context import ProjectContext
from backend.worker.labels import ProjectLabels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Monitor:
    """Measures one project's rounds."""

    ctx: ProjectContext
    head_options: HeadOptions
    tracker: ProjectTracker
    names: CoderNames

    @property
    def project(self) -> str:
        return self.ctx.project

    def measure(self, labels: ProjectLabels) -> Monitoring:
        """Agreement over all coders, label counts and the codes too rare to learn."""
        scheme, min_positives = labels.scheme, self.ctx.loop.min_positives_per_code
        figures = json.loads(json.dumps(agreement(self.answers(labels), scheme.codes)))
        labeled = labels.labeled
        rare = rare_codes(labeled.matrix, scheme.codes, min_positives)
        if rare:
            log.warning(
                "project %s: too few positives to learn (fewer than %d): %s",
                self.project,
                min_positives,
                rare,
            )
        return Monitoring(
            agreement=figures,
            label_counts=label_counts(labeled.matrix, scheme.codes),
            rare_codes=rare,
            coders=self.names.counts(labeled.coder_counts()),
            labeled_tasks=len(set(labeled.task_ids)),
            automation_bias=self.automation_bias(labels),
        )

    def automation_bias(self, labels: ProjectLabels) -> dict | None:
        """How often coders kept the suggestion they started from (None, logged, if it fails: the
        round goes on without it)."""
        try:
            directory = self.ctx.store.layout.project(self.project)
            return project_report(directory, labels.annotated, labels.scheme, labels.emails, self.names)
        except Exception:
            log.exception("project %s: the automation-bias report failed", self.project)
            return None

    def track_agreement(self, measured: Monitoring) -> None:
        """Record the coders' agreement in MLflow when it changed since the state's."""
        figures = measured.agreement or {}
        if figures.get("tasks") and figures != self.ctx.states.read().monitoring.agreement:
            self.tracker.log_agreement(figures)

    def answers(self, labels: ProjectLabels) -> dict[int, list[CoderAnswer]]:
        """Every coder's counted answer per annotated task, coders named as shown."""
        return self.names.answers(answers_by_task(labels.annotated, labels.scheme, labels.emails))

    def quality(
        self, model: CodingModel, labels: ProjectLabels, embeddings: np.ndarray | None
    ) -> tuple[dict | None, dict | None]:
        """Cross-validated per-code figures and the model's agreement with each coder, both from one
        set of out-of-fold decisions (SetFit models only: they need the features the head saw)."""
        if embeddings is None:
            return None, None
        labeled = labels.labeled
        groups = np.asarray(labeled.task_ids)
        decisions = out_of_fold_decisions(
            embeddings, labeled.matrix, model.thresholds, self.head_options, groups
        )
        report = cross_validated_report(labeled.matrix, decisions, model.codes, model.thresholds)
        report["threshold_rule"] = threshold_rule(self.head_options)
        log.info(
            "project %s: cross-validated macro-F1 %s over %d code(s)",
            self.project,
            report["macro"]["f1"],
            report["codes_estimated"],
        )
        by_task = dict(zip(labeled.task_ids, decisions, strict=True))  # a task's rows share one answer
        as_coder = json.loads(json.dumps(model_agreement(self.answers(labels), by_task, model.codes)))
        log.info(  # coders unnamed: the log never carries identities, pseudonyms are in /metrics
            "project %s: the model as a coder: overall kappa with each of %d coder(s): %s",
            self.project,
            len(as_coder["with"]),
            [figures["overall"]["kappa"] for figures in as_coder["with"].values()],
        )
        return report, as_coder

    def stopping(self, before: RankedPool | None, previous: str | None, current: str) -> dict | None:
        """Did the new version change the code decisions of the unlabeled tasks? (stopping signal)"""
        now = self.ctx.store.ranked_pool(
            self.project, current
        )  # gone when newer rounds pruned it before this record was made
        if before is None or now is None:
            return None
        signal = stopping_signal(
            (before.task_ids, before.decisions),
            (now.task_ids, now.decisions),
            self.ctx.loop.stopping_change_threshold,
        )
        if signal and signal["stop"]:
            log.info(
                "project %s: stopping signal: %d of %d unlabeled tasks changed codes since %s",
                self.project,
                signal["changed"],
                signal["tasks_compared"],
                previous,
            )
        return signal


def round_figures(
    version: str, labeled: int, label_counts: dict[str, int], quality: dict | None, stopping: dict | None
) -> RoundFigures:
    """The figures of a version that went live, as the status page plots them over rounds."""
    codes = (quality or {}).get("codes") or {}
    return RoundFigures(
        version=version,
        finished_at=now(),
        labeled=labeled,
        label_counts=label_counts,
        f1={code: figures.get("f1") for code, figures in codes.items()},
        macro_f1=((quality or {}).get("macro") or {}).get("f1"),
        changed_share=(stopping or {}).get("changed_share"),
        stop=(stopping or {}).get("stop"),
    )
