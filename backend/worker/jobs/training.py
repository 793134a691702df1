"""A training round, the one pipeline of the fast loop and of full rounds:

    labels, read_in_full = labels.current()
    measured = monitor.measure(labels)
    fitted = fitter.fit(labels)                       # a model and its pool's probabilities
    trained = saver.save(...)                         # a saved version
    ranked = publisher.rank(labels, trained, scored)  # predictions in queue order
    live = publisher.go_live(ranked, ...)             # Label Studio serves it
    publisher.write_rest(live)                        # the rest, unless a newer round waits
    labels.reconcile(...)                             # after a shortcut read: anything missed?
    estimates = validator.estimate(...)               # on the blind validation sample, if any
    redecide(ctx, ranked, coded, estimates)           # the codes handed over to the model, again
    recorder.record(...)                              # quality, figures, MLflow

The fitter is what differs: a head refit on cached embeddings (jobs/head.py) or a whole model
(jobs/full.py). The reconciling read comes once the head is written: it reads every annotated task,
which Label Studio filters from all of them (100,000 tasks on SQLite: a second under coders' load,
docs/benchmarks.md), and a coder who submits right after the queue moved waits for a read under
way; the writing of the rest stops for a waiting round, and then that round reconciles instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from backend.learning.base import CodingModel
from backend.worker.autocode import redecide
from backend.worker.body_policy import BodyPolicy
from backend.worker.context import ProjectContext
from backend.worker.jobs.common import RoundSteps, too_few_examples
from backend.worker.labels import ProjectLabels
from backend.worker.publish import Trained
from backend.worker.ranking import Scored
from backend.worker.recorder import RoundToRecord
from backend.worker.validation import Validator


@dataclass(frozen=True)
class Fitted:
    """A model fitted on a round's labels, with its probabilities for the unlabeled tasks; `kind`
    and `extra` describe it in the saved version."""

    model: CodingModel
    seconds: float
    scored: Scored
    embeddings: np.ndarray | None = None
    kind: str = "full"
    extra: dict = field(default_factory=dict)


class Fitter(Protocol):
    def fit(self, labels: ProjectLabels) -> Fitted: ...


class LabelSource(Protocol):
    def current(self) -> tuple[ProjectLabels, bool]:
        """The labels to train on, and whether they were read in full (else `reconcile` is due)."""
        ...

    def read(self) -> ProjectLabels: ...

    def reconcile(self, used: ProjectLabels) -> None:
        """Once the version is live: ask for another round if Label Studio holds labels `used` lacks."""
        ...


@dataclass(frozen=True)
class TrainingRound:
    ctx: ProjectContext
    labels: LabelSource
    fitter: Fitter
    steps: RoundSteps
    body_policy: BodyPolicy | None = None
    validator: Validator | None = None

    def run(self) -> None:
        steps = self.steps
        labels, read_in_full = self.labels.current()
        if not read_in_full and len(labels.labeled) < self.ctx.loop.min_annotations_to_train:
            labels, read_in_full = self.labels.read(), True  # no round yet: count what Label Studio holds
        measured = steps.monitor.measure(labels)
        steps.monitor.track_agreement(measured)
        if too_few_examples(self.ctx, labels.labeled, measured):
            return
        fitted = self.fitter.fit(labels)
        version = steps.saver.save(fitted.model, labels.labeled, fitted.seconds, fitted.kind, **fitted.extra)
        trained = Trained(fitted.model, version, fitted.seconds, fitted.embeddings)
        ranked = steps.publisher.rank(labels, trained, fitted.scored)
        live = steps.publisher.go_live(ranked, labels, measured)
        try:
            steps.publisher.write_rest(live)
        finally:  # the version is live either way: a label a lost webhook did not bring still counts
            if not read_in_full:
                self.labels.reconcile(labels)
        if self.validator is not None:
            estimates = self.validator.estimate(labels, trained, fitted.scored)
            redecide(self.ctx, ranked, labels.annotated_ids, estimates)
        steps.recorder.record(RoundToRecord(labels, measured, live))
        if self.body_policy is not None:
            self.body_policy.ask_if_due(len(labels.labeled))
