"""What a round learns from: the label config and every annotated task, read from Label Studio.

Label Studio is the source of truth: a round always reads all annotated tasks (never an event's
payload), so a lost webhook never loses a label.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from backend.config import LoopSettings
from backend.domain.annotations import LabeledSet, labeled_set, training_examples
from backend.domain.scheme import CodingScheme, parse_label_config
from backend.domain.tasks import Task
from backend.studio.client import StudioAPI, StudioError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProjectLabels:
    """A project's coding scheme, its annotated tasks, its coders' emails and the training examples."""

    scheme: CodingScheme
    annotated: list[Task]
    emails: dict[int, str]
    labeled: LabeledSet

    @property
    def annotated_ids(self) -> set[int]:
        return {task.id for task in self.annotated}


def read_labels(studio: StudioAPI, project: str, loop: LoopSettings) -> ProjectLabels:
    """The training examples of the annotated tasks under TRAIN_CODERS and MULTI_CODER_RULE."""
    scheme = parse_label_config(studio.label_config(int(project)))
    annotated = list(studio.tasks(int(project), annotated=True))
    emails = user_emails(studio, project)
    examples, blank = training_examples(
        annotated, scheme, emails, rule=loop.multi_coder_rule, coders=loop.train_coders
    )
    if blank:
        log.warning("project %s: left out %d annotated task(s) with an empty text", project, blank)
    return ProjectLabels(scheme, annotated, emails, labeled_set(examples, scheme.codes))


def user_emails(studio: StudioAPI, project: str) -> dict[int, str]:
    """Coders' emails; without them (a token that may not list users) coders are user ids."""
    try:
        return studio.user_emails()
    except StudioError as exc:
        log.warning("project %s: coders are named by user id (%s)", project, exc)
        return {}
