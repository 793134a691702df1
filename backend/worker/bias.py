"""The automation-bias report of a project: its coders' annotations, the log of the suggestions the
backend wrote (storage/suggestions.py) and the blind validation sample's estimates, turned into the
figures of learning/bias.py. Each round measures it (worker/monitoring.py: `/metrics`, `/status`);
`coding-backend bias` reads Label Studio afresh and prints it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from backend.domain.annotations import counted_annotations
from backend.domain.coders import CoderNames
from backend.domain.scheme import CodingScheme
from backend.domain.tasks import Task
from backend.learning.bias import Started, automation_bias
from backend.learning.validation import CodeEstimate
from backend.storage.layout import ProjectDir
from backend.storage.suggestions import SuggestionLog
from backend.storage.validation import ValidationStore


def moment(text: object) -> datetime | None:
    """A Label Studio time (ISO 8601, `Z` or an offset), or None when absent or unreadable."""
    try:
        return datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None


def started_at(annotation: dict) -> datetime | None:
    """When the coder started: `created_at` (the submit) minus `lead_time` (the seconds the editor was
    open), or the draft's creation when earlier; None without a lead time (an annotation made through
    the API, say): then the start is unknown, not the submit."""
    created, lead = moment(annotation.get("created_at")), annotation.get("lead_time")
    if created is None or not isinstance(lead, int | float):
        return None
    start = created - timedelta(seconds=float(lead))
    draft = moment(annotation.get("draft_created_at"))
    return min(start, draft) if draft is not None else start


def parent_of(annotation: dict) -> int | None:
    """The id of the prediction the annotation started from (a number, or an object with an id)."""
    parent = annotation.get("parent_prediction")
    if isinstance(parent, dict):
        parent = parent.get("id")
    return parent if isinstance(parent, int) else None


def started(
    tasks: Iterable[Task], scheme: CodingScheme, emails: Mapping[int, str], names: CoderNames
) -> list[Started]:
    """Each coder's counted annotation of each task, the coder named as shown."""
    return [
        Started(
            names(coder),
            task.id,
            frozenset(scheme.codes_of(annotation.get("result") or [])),
            parent_of(annotation),
            started_at(annotation),
        )
        for task in tasks
        for coder, annotation in counted_annotations(task, emails).items()
    ]


def project_report(
    directory: ProjectDir,
    tasks: Iterable[Task],
    scheme: CodingScheme,
    emails: Mapping[int, str],
    names: CoderNames,
) -> dict:
    """The report over the project's annotated `tasks` (BiasReport.as_dict): suggestions from the
    project's log, the validation sample's tasks counted apart as blind, their agreement with the
    model from the sample's last estimates (`blind_version`: the version they measured)."""
    writes = SuggestionLog(directory).read(scheme.codes_of)
    sample = ValidationStore(directory).read()
    blind_tasks = frozenset(sample.task_ids) if sample else frozenset()
    estimates = sample.estimates if sample else None
    blind = (
        {code: CodeEstimate.of(figures) for code, figures in estimates.codes.items()} if estimates else None
    )
    report = automation_bias(started(tasks, scheme, emails, names), writes, scheme.codes, blind_tasks, blind)
    return {**report.as_dict(), "blind_version": estimates.version if estimates else None}
