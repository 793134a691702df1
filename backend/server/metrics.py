"""`/metrics`: each project's state, lanes, versions and monitoring as JSON (the project lead's view)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from backend.server.services import services
from backend.storage.state import ProjectState

bp = Blueprint("metrics", __name__)


def project_view(state: ProjectState, pending: list[str], versions: list[str]) -> dict:
    """One project as `/metrics` shows it (the names are this endpoint's documented keys)."""
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
    }


@bp.get("/metrics")
def metrics():
    found = services()
    projects = {}
    for project in found.store.projects():
        state = found.states(project).read()
        pending = [kind.value for kind in found.queue.pending(project)]
        versions = [version.name for version in found.store.versions(project)]
        projects[project] = project_view(state, pending, versions)
    connection = found.label_studio.current()
    label_studio = None if connection is None else {"state": connection.state, "detail": connection.detail}
    return jsonify(
        projects=projects, query_strategy=found.settings.model.query_strategy, label_studio=label_studio
    )
