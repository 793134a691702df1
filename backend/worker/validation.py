"""The blind validation sample: drawing it, releasing it, and a round's estimates on it.

`draw` takes a seeded uniform random sample of the segments uncoded now and records it
(storage/validation.py); the next round serves it one task in `every` without a suggestion
(worker/ranking.py `Queue`) and every round keeps it out of training (worker/labels.py) until the
lead releases it. After a version is live, `Validator.estimate` measures it on the coded part of
the sample (learning/validation.py) and records the figures for `/metrics`, `/status` and MLflow.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np

from backend.domain.agreement import agreement
from backend.domain.annotations import LabeledSet
from backend.errors import BackendError
from backend.learning.validation import Corpus, Sample, estimate_codes
from backend.queue.work import WorkKind
from backend.storage.state import now
from backend.storage.validation import Estimates, ValidationSample
from backend.tracking.project import ProjectTracker
from backend.worker.context import ProjectContext
from backend.worker.labels import ProjectLabels
from backend.worker.monitoring import Monitor
from backend.worker.publish import Trained
from backend.worker.ranking import Scored

log = logging.getLogger(__name__)


class SampleError(BackendError):
    """A validation sample that cannot be drawn or released as asked."""


class NoModelError(SampleError):
    """A validation sample asked for before the project has a model."""

    http_status = 409


def draw(ctx: ProjectContext, size: int, seed: int, every: int) -> ValidationSample:
    """Draw and record a sample of `size` uncoded segments, served one in `every` of the queue, and ask
    for a round that puts it in the queue. Replaces an earlier sample."""
    if size < 1 or every < 1:
        raise SampleError(f"--size {size} and --every {every}: both must be whole numbers of at least 1")
    if not ctx.states.read().current_version:
        raise NoModelError(
            f"project {ctx.project} has no model yet: a validation sample measures the model's decisions, "
            "so code the first segments and let a round train one first"
        )
    uncoded = sorted(task.id for task in ctx.studio.tasks(ctx.project_id, annotated=False, data_only=True))
    if size > len(uncoded):
        raise SampleError(
            f"--size {size}: project {ctx.project} has only {len(uncoded)} uncoded segment(s) to sample from"
        )
    coded = sum(1 for _ in ctx.studio.tasks(ctx.project_id, annotated=True, data_only=True))
    chosen = np.random.default_rng(seed).choice(len(uncoded), size=size, replace=False)
    sample = ValidationSample(
        task_ids=[uncoded[i] for i in chosen],
        seed=seed,
        every=every,
        drawn_from=len(uncoded),
        coded_before=coded,
    )
    ctx.validation.replace(sample)
    ctx.queue.request(ctx.project, WorkKind.TRAIN)
    return sample


def release(ctx: ProjectContext) -> ValidationSample:
    """Let training take the sample's labels from the next round on; its estimates say so from then."""
    released = ctx.validation.update(
        lambda sample: setattr(sample, "released_at", sample.released_at or now())
    )
    if released is None:
        raise SampleError(f"project {ctx.project} has no validation sample to release")
    ctx.queue.request(ctx.project, WorkKind.TRAIN)
    return released


@dataclass(frozen=True)
class Validator:
    """Measures a round's live version on the coded part of the validation sample, and the coders'
    agreement there (`monitor`: coders named as everywhere else)."""

    ctx: ProjectContext
    tracker: ProjectTracker
    monitor: Monitor

    def estimate(self, labels: ProjectLabels, trained: Trained, scored: Scored) -> Estimates | None:
        """Precision, recall, F1 and corpus prevalence per code with their intervals (None without a
        coded validation segment). A failure is logged: the version is live, the round goes on. When
        a newer round already waits, that round measures instead: a coder waits for it."""
        sample = self.ctx.validation.read()
        if sample is None or self.ctx.round_waits():
            return None
        try:
            estimates = self._estimates(sample, labels, trained, scored)
        except Exception:
            log.exception("project %s: the validation estimates failed", self.ctx.project)
            return None
        if estimates is None:
            return None
        self.ctx.validation.update(lambda kept: setattr(kept, "estimates", estimates))
        self.tracker.log_validation(estimates.version, estimates.model_dump())
        return estimates

    def _estimates(
        self, sample: ValidationSample, labels: ProjectLabels, trained: Trained, scored: Scored
    ) -> Estimates | None:
        in_sample = set(sample.task_ids)
        examples = [labels.labeled, labels.validation]
        validation = by_task(examples, lambda task: task in in_sample)
        if not validation:
            return None
        coded = by_task(examples, lambda task: task not in in_sample)
        model, codes = trained.model, labels.scheme.codes
        texts = [text for text, _ in validation.values()]
        truth = np.array([row for _, row in validation.values()], bool)
        proba = (scored.score_texts or model.predict_proba)(texts)  # a refitted head scores embeddings
        rest = np.asarray(scored.proba).reshape(-1, len(codes))
        positives = np.array([row for _, row in coded.values()], bool).reshape(-1, len(codes)).sum(axis=0)
        found = estimate_codes(
            codes, Sample(truth, model.decide(proba), proba), Corpus(len(coded), positives, rest), sample.seed
        )
        answers = {task: given for task, given in self.monitor.answers(labels).items() if task in in_sample}
        return Estimates(
            version=trained.version.name,
            computed_at=now(),
            coded=len(validation),
            held_out=not sample.released_at,
            codes={code: estimate.as_dict() for code, estimate in found.items()},
            agreement=json.loads(json.dumps(agreement(answers, codes))),  # numpy figures as JSON ones
        )


def by_task(sets: list[LabeledSet], keep) -> dict[int, tuple[str, np.ndarray]]:
    """Each kept task's text and codes: a code where at least half of its examples hold it (several
    examples per task under MULTI_CODER_RULE=per_coder)."""
    rows: dict[int, tuple[str, list]] = {}
    for labeled in sets:
        for task, text, row in zip(labeled.task_ids, labeled.texts, labeled.matrix, strict=True):
            if keep(task):
                rows.setdefault(task, (text, []))[1].append(row)
    return {task: (text, np.mean(found, axis=0) >= 0.5) for task, (text, found) in rows.items()}
