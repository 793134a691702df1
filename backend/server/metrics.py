"""`/metrics`: each project's state, lanes, versions and monitoring as JSON (the project lead's view)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from flask import Blueprint, jsonify

from backend.server.downloads import export_working
from backend.server.services import services
from backend.storage.atomic import write_identity
from backend.storage.autocode import AutoCodes, AutoCodeStore
from backend.storage.exports import FILES, ExportRecords, ExportStore
from backend.storage.layout import ProjectDir
from backend.storage.state import ProjectState
from backend.storage.validation import ValidationSample, ValidationStore

bp = Blueprint("metrics", __name__)
CACHED_VIEWS = 64  # projects whose hand-overs are kept parsed


def validation_view(sample: ValidationSample | None, serving: str | None) -> dict | None:
    """The blind validation sample and its last estimates: per code precision, recall, F1 and corpus
    prevalence (ppi beside classical), each `{estimate, low, high, n}` with a 95 % interval, for the
    segments uncoded when the sample was drawn."""
    if sample is None:
        return None
    estimates = sample.estimates
    return {
        "size": len(sample.task_ids),
        "seed": sample.seed,
        "every": sample.every,
        "drawn_at": sample.drawn_at,
        "drawn_from": sample.drawn_from,
        "coded_before": sample.coded_before,
        "held_out": sample.released_at is None,
        "released_at": sample.released_at,
        "estimates": None
        if estimates is None
        else {**estimates.model_dump(), "of_serving_version": estimates.version == serving},
    }


def autocoded_view(autocodes: AutoCodes) -> dict:
    """Codes handed over to the model: the version that decided, when, on how many segments, how many
    it coded positive, and the targets the validation estimate met; the version it was handed over
    at, the last re-decision by a newer version (`redecided`, with its one-line `summary`), the
    segments coders coded since the hand-over, and why the serving version does not decide the code
    (`suspended`: its estimate misses the targets; None while it decides)."""
    return {
        code: {
            "version": kept.version,
            "decided_at": kept.decided_at,
            "segments": len(kept.task_ids),
            "positives": kept.positives,
            "min_precision": kept.min_precision,
            "min_recall": kept.min_recall,
            "handed_version": kept.handed_version,
            "redecided": None
            if kept.redecided is None
            else {**kept.redecided.model_dump(), "summary": kept.redecided.describe()},
            "coded_since": kept.coded_since,
            "suspended": kept.suspended,
        }
        for code, kept in autocodes.codes.items()
    }


class FileViews:
    """Views of files by path, each kept while its file stays the same (inode, modification time,
    size: every write of the store replaces the file). A project's hand-overs hold a decision and a
    probability per uncoded segment, megabytes at 100,000 tasks: parsed once, not per request."""

    def __init__(self, size: int = CACHED_VIEWS):
        self.size, self._views, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, path: Path, make: Callable[[], dict]) -> dict:
        identity = write_identity(path)
        with self._lock:
            kept = self._views.get(path)
            if kept is not None and kept[0] == identity:
                self._views.move_to_end(path)
                return kept[1]
        view = make()
        with self._lock:
            self._views[path] = (identity, view)
            while len(self._views) > self.size:
                self._views.popitem(last=False)
        return view


AUTOCODED = FileViews()


def autocoded_of(directory: ProjectDir) -> dict:
    """The project's hand-overs as `/metrics` shows them; a damaged file is named, not a 500 (the
    store refuses to guess what was handed over, so `autocode` itself still stops on it)."""

    def view() -> dict:
        try:
            return autocoded_view(AutoCodeStore(directory).read())
        except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            return {"error": f"autocoded.json cannot be read ({type(exc).__name__}); see the backend's log"}

    return AUTOCODED.get(directory.autocoded, view)


def exports_view(records: ExportRecords, working: bool) -> dict:
    """Each format's export (None before the first ask): its status (`stopped` when it was asked for
    but no worker will take it any more), tasks read of how many, its error, and the last finished
    file that can be downloaded (when, its size in bytes, the serving version it holds, segments)."""
    view: dict = {}
    for fmt in FILES:
        record = records.formats.get(fmt)
        if record is None:
            view[fmt] = None
            continue
        shown = record.model_dump(
            include={"requested_at", "started_at", "done", "total", "error", "finished"}
        )
        status = "stopped" if record.unfinished and not working else record.status.value
        view[fmt] = {"status": status, **shown}
    return view


def project_view(
    state: ProjectState, pending: list[str], versions: list[str], validation: ValidationSample | None = None
) -> dict:
    """One project as `/metrics` shows it (the names are this endpoint's documented keys). The
    cross-validated `quality` is optimistic (actively chosen segments); `validation` is not."""
    return {
        "state": state.fast.status.value,
        "current_version": state.current_version,
        "predictions_complete": state.complete,
        "body_version": state.body.version,
        "body_state": state.body.status.value,
        "body_error": state.body.error,
        "labeled": state.labeled,
        "waiting_for_annotations": state.waiting_for,
        "last_training_seconds": state.last_training_seconds,
        "pending": pending,
        "last_error": state.fast.error,
        "updated_at": state.updated_at,
        "versions": versions,
        "rounds": [record.model_dump() for record in state.rounds],
        "figures": [figures.model_dump() for figures in state.figures],
        "progress": state.progress.model_dump() if state.progress and state.busy else None,
        "pool_encoded": state.pool_encoded.model_dump() if state.pool_encoded else None,
        "body_choice": state.body.choice.model_dump() if state.body.choice else None,
        "codebook_start": state.codebook_start.model_dump() if state.codebook_start else None,
        **state.monitoring.model_dump(),
        "quality_is": "cross-validated on the actively chosen labeled segments: optimistic",
        "validation": validation_view(validation, state.current_version),
    }


@bp.get("/metrics")
def metrics():
    found = services()
    projects = {}
    for project in found.store.projects():
        state = found.states(project).read()
        pending = [kind.value for kind in found.queue.pending(project)]
        versions = [version.name for version in found.store.versions(project)]
        directory = found.store.layout.project(project)
        projects[project] = project_view(state, pending, versions, ValidationStore(directory).read())
        projects[project]["autocoded"] = autocoded_of(directory)
        projects[project]["exports"] = exports_view(
            ExportStore(directory).read(), export_working(found, project)
        )
    connection = found.label_studio.current()
    label_studio = None if connection is None else {"state": connection.state, "detail": connection.detail}
    return jsonify(
        projects=projects, query_strategy=found.settings.model.query_strategy, label_studio=label_studio
    )
