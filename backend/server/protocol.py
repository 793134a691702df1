"""The ML backend protocol Label Studio speaks: `/health`, `/setup`, `/predict`, `/webhook`, `/versions`.

Webhooks only leave a request for background work and answer at once: Label Studio sends them
inside the coder's submit request, with a one-second timeout.
"""

from __future__ import annotations

from functools import lru_cache

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import BadRequest

from backend.domain.scheme import LabelConfigError, parse_label_config
from backend.queue.work import WorkKind
from backend.server.requests import json_body, project_id
from backend.server.services import services
from backend.storage.inbox import AnnotationEvent
from backend.storage.state import ProjectState

bp = Blueprint("protocol", __name__)

TRAIN_ACTIONS = {"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED", "START_TRAINING"}
PREDICT_ACTIONS = {"TASKS_CREATED"}
IGNORED_ACTIONS = {
    "ANNOTATIONS_CREATED",
    "TASKS_DELETED",
    "PROJECT_CREATED",
    "PROJECT_UPDATED",
    "PROJECT_DELETED",
    "LABEL_LINK_CREATED",
    "LABEL_LINK_UPDATED",
    "LABEL_LINK_DELETED",
    "REVIEW_CREATED",
    "REVIEW_UPDATED",
    "REVIEWS_DELETED",
}


@bp.get("/")
@bp.get("/health")
def health():
    """Up, and the kind of model every project's rounds train and /predict serves (MODEL_KIND)."""
    return jsonify(status="UP", model_kind=services().settings.model.model_kind)


@bp.post("/setup")
def setup():
    body = json_body()
    project = project_id(body.get("project"))
    scheme = parse_label_config(body.get("schema") or "", services().settings.loop.none_choices)
    services().webhook_auth.ensure_soon(project)
    state = remember_code_names(project, services().states(project).read(), scheme.names())
    if state.pool_encoded is None:
        encode_the_pool_early(project, state)
    return jsonify(model_version=state.current_version or "untrained")


def remember_code_names(project: str, state: ProjectState, names: dict[str, str]) -> ProjectState:
    """The state, holding how coders see each code: the status page is built from the state alone,
    with no label config at hand. Written only when the form changed them (/setup comes often)."""
    if state.code_names == names:
        return state
    return services().states(project).update(lambda changed: setattr(changed, "code_names", names))


def encode_the_pool_early(project: str, state: ProjectState) -> None:
    """Before the first round of the two-speed loop, ask the background lane to encode the pool, so
    that round only fits a head (worker/jobs/embed.py). Label Studio calls /setup often: once is
    enough while the lane is at it."""
    if services().settings.two_speed and state.current_version is None and not state.body.status.busy:
        services().queue.request(project, WorkKind.EMBED)


@bp.post("/predict")
def predict():
    body = json_body()
    tasks = body.get("tasks")
    if not isinstance(tasks, list) or not all(isinstance(task, dict) for task in tasks):
        raise BadRequest('"tasks" must be a list of task objects')
    limit = services().settings.server.max_predict_tasks
    if len(tasks) > limit:
        raise BadRequest(f"at most {limit} tasks per /predict (MAX_PREDICT_TASKS), got {len(tasks)}")
    project = project_id(body.get("project"))
    scheme = parse_label_config(body.get("label_config") or "", services().settings.loop.none_choices)
    return jsonify(results=services().predictor.predict(project, scheme, tasks))


@bp.post("/webhook")
def webhook():
    body = json_body()
    action = body.get("action")
    if not isinstance(action, str):
        raise BadRequest('missing "action"')
    if action in IGNORED_ACTIONS:
        return jsonify(status="ignored", action=action)
    if action not in TRAIN_ACTIONS | PREDICT_ACTIONS:
        raise BadRequest(f"unknown action {action!r}")
    project = project_id(body.get("project"))
    annotation = body.get("annotation")
    if action == "ANNOTATION_CREATED" and isinstance(annotation, dict) and annotation.get("was_cancelled"):
        return jsonify(status="ignored", action=action, reason="skipped task")
    kind = WorkKind.PREDICT if action in PREDICT_ACTIONS else WorkKind.TRAIN
    if kind is WorkKind.TRAIN and services().settings.two_speed:
        services().inboxes.put(project, annotation_event(body))  # before the request: its round sees it
    queue = services().queue
    queue.request(project, kind)
    if kind is WorkKind.PREDICT:
        encode_the_pool_early(project, services().states(project).read())
    if action == "START_TRAINING" and services().settings.two_speed:
        queue.request(project, WorkKind.BODY)  # the button also fine-tunes the body now
    return jsonify(status="queued", action=action, project=project, work=kind.value), 202


def annotation_event(body: dict) -> AnnotationEvent:
    """What a training webhook tells the fast loop (storage/inbox.py): the annotation and the text of its
    task when it carries both, else (deleted annotations, the train button, a payload without them) an
    event that makes the round read every annotation from Label Studio."""
    annotation, task = body.get("annotation"), body.get("task")
    if body.get("action") in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED") and isinstance(annotation, dict):
        data, task_id = (task or {}).get("data"), (task or {}).get("id")
        if isinstance(data, dict) and isinstance(task_id, int) and isinstance(annotation.get("id"), int):
            return AnnotationEvent.of(task_id, data, annotation, coded_field(body.get("project")))
    return AnnotationEvent(task_id=0, task_data={})


def coded_field(project: object) -> str | None:
    """The task field the project's form codes, from the label config Label Studio sends with the
    project; None when it sends none this backend can code."""
    config = project.get("label_config") if isinstance(project, dict) else None
    if not isinstance(config, str):
        return None
    return text_field_of(config, tuple(services().settings.loop.none_choices))


@lru_cache(maxsize=32)
def text_field_of(config: str, none_choices: tuple[str, ...]) -> str | None:
    """The field a label config codes, parsed once per config: a parse takes about 5 ms (the SDK's
    LabelInterface), and every webhook carries its project's config (the load test's webhook p50
    went from 1.6 to 16 ms when each webhook parsed it)."""
    try:
        return parse_label_config(config, none_choices).text_field
    except LabelConfigError:
        return None


@bp.get("/versions")
def versions():
    store = services().store
    wanted = request.args.get("project")
    projects = [project_id(wanted)] if wanted else store.projects()
    return jsonify(versions=[version.name for project in projects for version in store.versions(project)])
