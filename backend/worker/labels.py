"""What a round learns from: the label config and every annotated task, read from Label Studio.

Label Studio is the source of truth. Most rounds read all annotated tasks; the fast loop may take
a shortcut (:class:`LabelFeed`): what it read last plus the annotations webhooks brought since,
followed by a full read once the new version's head is written that asks for another round when Label
Studio holds labels the shortcut missed. A lost webhook costs a round, never a label.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from backend.domain.annotations import LabeledSet, labeled_set, training_examples
from backend.domain.scheme import CodingScheme, parse_label_config
from backend.domain.tasks import Task
from backend.queue.work import WorkKind
from backend.storage.inbox import AnnotationEvent, Inbox
from backend.studio.client import StudioAPI, StudioError
from backend.worker.context import ProjectContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProjectLabels:
    """A project's coding scheme, its annotated tasks, its coders' emails, the training examples and
    the examples of the blind validation sample, held out of training (storage/validation.py)."""

    scheme: CodingScheme
    annotated: list[Task]
    emails: dict[int, str]
    labeled: LabeledSet
    validation: LabeledSet

    @property
    def annotated_ids(self) -> set[int]:
        return {task.id for task in self.annotated}

    @property
    def coders(self) -> int:
        """How many users annotated the project's tasks (each may hold one task locked in its queue)."""
        return len(
            {annotation.get("completed_by") for task in self.annotated for annotation in task.annotations}
        )


def project_scheme(ctx: ProjectContext) -> CodingScheme:
    """The project's coding scheme as Label Studio holds its label config now (under NONE_CHOICES)."""
    return parse_label_config(ctx.studio.label_config(ctx.project_id), ctx.loop.none_choices)


def read_labels(ctx: ProjectContext) -> ProjectLabels:
    """The training examples of the annotated tasks under TRAIN_CODERS and MULTI_CODER_RULE."""
    scheme = project_scheme(ctx)
    annotated = list(ctx.studio.tasks(ctx.project_id, annotated=True))
    emails = user_emails(ctx.studio, ctx.project)
    return project_labels(ctx, scheme, annotated, emails)


@dataclass(frozen=True)
class FullReads:
    """A project's labels read in full for every round (full rounds and the background lane)."""

    ctx: ProjectContext

    def current(self) -> tuple[ProjectLabels, bool]:
        return self.read(), True

    def read(self) -> ProjectLabels:
        return read_labels(self.ctx)

    def reconcile(self, used: ProjectLabels) -> None:
        """Nothing to do: the round read everything."""


def project_labels(
    ctx: ProjectContext, scheme: CodingScheme, annotated: list[Task], emails: dict[int, str]
) -> ProjectLabels:
    """The examples under TRAIN_CODERS and MULTI_CODER_RULE, those of the validation sample apart."""
    loop = ctx.loop
    examples, blank = training_examples(
        annotated, scheme, emails, rule=loop.multi_coder_rule, coders=loop.train_coders
    )
    if blank:
        log.warning("project %s: left out %d annotated task(s) with an empty text", ctx.project, blank)
    every = labeled_set(examples, scheme.codes)
    held_out = ctx.validation.held_out()
    kept = [i for i, task in enumerate(every.task_ids) if task not in held_out]
    validation = [i for i, task in enumerate(every.task_ids) if task in held_out]
    return ProjectLabels(scheme, annotated, emails, every.subset(kept), every.subset(validation))


class KeptLabels:
    """A worker process's last label read of each project it worked at, most recent `limit` projects.

    A worker moves between projects' lanes (Scheduler.work_in_turn). Back at a project, its round
    takes what it read there before plus the annotations webhooks brought since, instead of reading
    every annotated task from Label Studio again: seconds on a large project, in the one process that
    also serves the coders. It does so only while no other process took the project's events
    meanwhile (Inbox.taken_last_by): they would be missing from what it kept.
    """

    def __init__(self, limit: int = 8):
        self.taker = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.limit = limit
        self._labels: OrderedDict[str, ProjectLabels] = OrderedDict()

    def last(self, project: str) -> ProjectLabels | None:
        return self._labels.get(project)

    def keep(self, project: str, labels: ProjectLabels | None) -> None:
        """Keep `labels` as the project's last read, the most recent (None forgets it)."""
        self._labels.pop(project, None)
        if labels is not None:
            self._labels[project] = labels
            while len(self._labels) > self.limit:
                self._labels.popitem(last=False)


class LabelFeed:
    """A project's labels for the fast loop: the last full read, kept in the worker process's memory
    (`kept`, across its moves between projects), plus the annotations webhooks brought since
    (storage/inbox.py)."""

    def __init__(self, ctx: ProjectContext, inbox: Inbox, kept: KeptLabels | None = None):
        self.ctx, self.inbox = ctx, inbox
        self.kept = KeptLabels() if kept is None else kept

    @property
    def last(self) -> ProjectLabels | None:
        return self.kept.last(self.ctx.project)

    @last.setter
    def last(self, labels: ProjectLabels | None) -> None:
        self.kept.keep(self.ctx.project, labels)

    def current(self) -> tuple[ProjectLabels, bool]:
        """The labels to train on, and whether they were read in full (else a reconcile is due)."""
        last = self.last if self.inbox.taken_last_by(self.kept.taker) else None
        events = self.inbox.take(self.kept.taker)
        if last is not None and events is not None:
            annotated = with_events(last, events)
            if annotated is not None:
                self.last = project_labels(self.ctx, last.scheme, annotated, last.emails)
                log.info(
                    "project %s: %d annotation(s) from webhooks; a full read follows",
                    self.ctx.project,
                    len(events),
                )
                return self.last, False
        return self.read(), True

    def read(self) -> ProjectLabels:
        """Everything from Label Studio (the inbox's events are in it: they are dropped first)."""
        self.inbox.take(self.kept.taker)
        self.last = None
        self.last = read_labels(self.ctx)
        return self.last

    def reconcile(self, used: ProjectLabels) -> None:
        """Read every annotation from Label Studio once the version's head is written; another round follows
        if `used` missed some. When the next annotation's round already waits, that round
        reconciles instead: this read would only delay it (a coder who submits at once waits)."""
        project = self.ctx.project
        if self.ctx.round_waits():
            return
        try:
            missed = self.missed(used)
        except Exception as exc:  # the version is live: a failed read only costs the shortcut
            self.last = None
            log.warning("project %s: labels not reconciled (%s); the next round reads them all", project, exc)
            return
        if missed.missing:
            log.info(
                "project %s: Label Studio holds %d annotated task(s) this round did not have (a webhook "
                "lost or still on its way); another round follows",
                project,
                missed.missing,
            )
        if missed.differing:
            log.warning(
                "project %s: %d task(s) trained on differ from Label Studio's (an edit whose webhook was "
                "lost or is on its way, changed codes); another round follows",
                project,
                missed.differing,
            )
        if missed:
            self.ctx.queue.request(project, WorkKind.TRAIN)

    def missed(self, used: ProjectLabels) -> Reconciled:
        """Read everything and compare it with `used`: a webhook lost, an annotation deleted, the codes
        changed. Tasks of events that arrived since are left out: their round follows anyway, and
        Label Studio may send a webhook before its annotation can be read."""
        self.last = None
        self.last = read_labels(self.ctx)
        pending = self.inbox.peek()
        if pending is None or any(event.annotation is None for event in pending):
            return Reconciled()  # the next round, already asked for, reads everything
        return reconciled(self.last, used, besides={event.task_id for event in pending})


def with_events(labels: ProjectLabels, events: Sequence[AnnotationEvent]) -> list[Task] | None:
    """The annotated tasks of `labels` with the events' annotations added or replaced (by annotation
    id); None when an event cannot be followed: annotations deleted, the train button, a coder the
    last read did not know."""
    tasks = {task.id: task for task in labels.annotated}
    for event in events:
        annotation = event.annotation
        if annotation is None:
            return None
        if labels.emails and annotation.get("completed_by") not in labels.emails:
            return None
        task = tasks.get(event.task_id) or Task(event.task_id, event.task_data)
        kept = tuple(a for a in task.annotations if a.get("id") != annotation["id"])
        tasks[event.task_id] = replace(task, annotations=(*kept, annotation))
    return list(tasks.values())


@dataclass(frozen=True)
class Reconciled:
    """What a full read holds that a round's labels did not: annotated tasks no webhook brought (yet),
    and tasks whose training examples differ (an edit or deletion the events missed, new codes)."""

    missing: int = 0
    differing: int = 0

    def __bool__(self) -> bool:
        return bool(self.missing or self.differing)


def reconciled(full: ProjectLabels, used: ProjectLabels, besides: Collection[int] = ()) -> Reconciled:
    """How `full` (a read of everything) differs from `used`, tasks in `besides` left out."""
    if full.scheme.codes != used.scheme.codes:
        return Reconciled(differing=max(1, len(full.labeled)))
    have, want = _examples_by_task(full, besides), _examples_by_task(used, besides)
    missing = sum(1 for task in have if task not in want)
    differing = sum(1 for task in have if task in want and have[task] != want[task])
    return Reconciled(missing, differing + sum(1 for task in want if task not in have))


def _examples_by_task(labels: ProjectLabels, besides: Collection[int]) -> dict[int, list[tuple]]:
    labeled, found = labels.labeled, {}
    for task, coders, text, row in zip(
        labeled.task_ids, labeled.coders, labeled.texts, labeled.matrix.tolist(), strict=True
    ):
        if task not in besides:
            found.setdefault(task, []).append((coders, text, tuple(row)))
    return {task: sorted(examples) for task, examples in found.items()}


def user_emails(studio: StudioAPI, project: str) -> dict[int, str]:
    """Coders' emails; without them (a token that may not list users) coders are user ids."""
    try:
        return studio.user_emails()
    except StudioError as exc:
        log.warning("project %s: coders are named by user id (%s)", project, exc)
        return {}
