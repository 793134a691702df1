"""The HTTP app Label Studio talks to: routes, basic auth, JSON errors. No ML happens here.

Routes follow the official ML backend protocol (`/health`, `/setup`, `/predict`, `/webhook`,
`/versions`) plus `/metrics`. Webhooks only leave a request for background work (see
``scheduler.py``) and answer at once: Label Studio sends them inside the coder's submit request.
"""

from __future__ import annotations

import base64
import hmac
import logging
import threading
import time

from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException

from backend.config import Settings, load_settings
from backend.predictor import Predictor
from backend.scheduler import Scheduler, pending_kinds, read_state
from backend.scheme import LabelConfigError, parse_label_config
from backend.versions import ModelStore

log = logging.getLogger(__name__)
routes = Blueprint("backend", __name__)
# What each round records for the project lead (see training.Round): examples per coder and code,
# codes too rare to learn, cross-validated quality, the stopping signal and inter-coder agreement.
MONITORING = ("labeled_tasks", "coders", "label_counts", "rare_codes", "quality", "stopping", "agreement")

TRAIN_ACTIONS = {"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED", "START_TRAINING"}
PREDICT_ACTIONS = {"TASKS_CREATED"}
IGNORED_ACTIONS = {
    "ANNOTATIONS_CREATED", "TASKS_DELETED", "PROJECT_CREATED", "PROJECT_UPDATED", "PROJECT_DELETED",
    "LABEL_LINK_CREATED", "LABEL_LINK_UPDATED", "LABEL_LINK_DELETED", "REVIEW_CREATED", "REVIEW_UPDATED",
    "REVIEWS_DELETED",
}  # fmt: skip


class Services:
    """What the routes need, built once per app (one per gunicorn worker)."""

    def __init__(self, settings: Settings, scheduler: Scheduler | None = None):
        self.settings = settings
        self.store = ModelStore(settings.model_dir, settings.keep_versions)
        self.scheduler = scheduler or Scheduler(settings.model_dir)
        self.predictor = Predictor(settings, self.store)
        self.webhook_auth = WebhookAuthorizer(settings)


def services() -> Services:
    return current_app.extensions["coding_backend"]


def create_app(settings: Settings | None = None, scheduler: Scheduler | None = None) -> Flask:
    """Build the app; tests pass their own settings and scheduler."""
    app = Flask(__name__)
    app.extensions["coding_backend"] = Services(settings or load_settings(), scheduler)
    app.register_blueprint(routes)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(LabelConfigError, _config_error)
    app.register_error_handler(Exception, _unexpected_error)
    app.before_request(_require_basic_auth)
    return app


# --- auth and errors ---------------------------------------------------------------------------


def basic_auth_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _require_basic_auth():
    settings = services().settings
    if not settings.basic_auth_user:
        return None
    expected = basic_auth_header(settings.basic_auth_user, settings.basic_auth_pass.get_secret_value())
    if hmac.compare_digest(request.headers.get("Authorization", ""), expected):
        return None
    response = jsonify(error="authentication required")
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Basic realm="coding-backend"'
    return response


def _http_error(error: HTTPException):
    return jsonify(error=error.description), error.code


def _config_error(error: LabelConfigError):
    return jsonify(error=str(error)), 422


def _unexpected_error(error: Exception):
    log.exception("unexpected error in %s %s", request.method, request.path)
    return jsonify(error=f"internal error: {type(error).__name__}"), 500


# --- request parsing --------------------------------------------------------------------------


def _json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _project_id(value: object) -> str:
    """Label Studio sends '<id>.<created_at>' to /setup and /predict, a dict or int elsewhere."""
    if isinstance(value, dict):
        value = value.get("id")
    text = str(value).split(".", 1)[0] if value is not None else ""
    if not text.isdigit():
        raise BadRequest(f"missing or invalid project id: {value!r}")
    return text


# --- routes -----------------------------------------------------------------------------------


@routes.get("/")
@routes.get("/health")
def health():
    return jsonify(status="UP", model_class="SetFitCodingBackend")


@routes.post("/setup")
def setup():
    body = _json_body()
    project = _project_id(body.get("project"))
    parse_label_config(body.get("schema") or "")
    services().webhook_auth.ensure_soon(project, request.host)
    current = read_state(services().store.root, project).get("current_version")
    return jsonify(model_version=current or "untrained")


@routes.post("/predict")
def predict():
    body = _json_body()
    tasks = body.get("tasks")
    if not isinstance(tasks, list) or not all(isinstance(task, dict) for task in tasks):
        raise BadRequest('"tasks" must be a list of task objects')
    project = _project_id(body.get("project"))
    scheme = parse_label_config(body.get("label_config") or "")
    return jsonify(results=services().predictor.predict(project, scheme, tasks))


@routes.post("/webhook")
def webhook():
    body = _json_body()
    action = body.get("action")
    if not isinstance(action, str):
        raise BadRequest('missing "action"')
    if action in IGNORED_ACTIONS:
        return jsonify(status="ignored", action=action)
    if action not in TRAIN_ACTIONS | PREDICT_ACTIONS:
        raise BadRequest(f"unknown action {action!r}")
    project = _project_id(body.get("project"))
    if action == "ANNOTATION_CREATED" and (body.get("annotation") or {}).get("was_cancelled"):
        return jsonify(status="ignored", action=action, reason="skipped task")
    kind = "predict" if action in PREDICT_ACTIONS else "train"
    services().scheduler.request(project, kind)
    if action == "START_TRAINING" and services().settings.two_speed:
        services().scheduler.request(project, "body")  # the button also fine-tunes the body now
    return jsonify(status="queued", action=action, project=project, work=kind), 202


@routes.get("/metrics")
def metrics():
    store = services().store
    projects = {}
    for project in store.projects():
        state = read_state(store.root, project)
        projects[project] = {
            "state": state.get("state", "idle"),
            "current_version": state.get("current_version"),
            "predictions_complete": state.get("complete"),
            "body_version": state.get("body_version"),
            "body_state": state.get("body_state"),
            "body_error": state.get("body_error"),
            "labeled": state.get("labeled"),
            "waiting_for_annotations": state.get("waiting_for"),
            "last_training_seconds": state.get("last_training_seconds"),
            "pending": pending_kinds(store.root, project),
            "last_error": state.get("last_error"),
            "updated_at": state.get("updated_at"),
            "versions": [version.name for version in store.versions(project)],
            "rounds": state.get("rounds", []),
            **{name: state.get(name) for name in MONITORING},
        }
    return jsonify(projects=projects, query_strategy=services().settings.query_strategy)


@routes.get("/versions")
def versions():
    store = services().store
    wanted = request.args.get("project")
    projects = [_project_id(wanted)] if wanted else store.projects()
    return jsonify(versions=[version.name for project in projects for version in store.versions(project)])


class WebhookAuthorizer:
    """Adds our basic auth to a project's webhook, once per project and process.

    Label Studio calls /setup very often, and listing its ML backends makes it call /setup
    again; so we never call back from every /setup. One attempt at a time per project, repeated
    at most every RETRY_SECONDS until a webhook was found (Label Studio creates it after the
    first /setup).
    """

    RETRY_SECONDS = 10.0

    def __init__(self, settings: Settings):
        self.settings = settings
        self._done: set[str] = set()
        self._last_try: dict[str, float] = {}
        self._lock = threading.Lock()

    def ensure_soon(self, project: str, backend_host: str) -> None:
        settings = self.settings
        if not (settings.basic_auth_user and settings.label_studio_api_key):
            return
        with self._lock:
            now = time.monotonic()
            if project in self._done or now - self._last_try.get(project, -1e9) < self.RETRY_SECONDS:
                return
            self._last_try[project] = now
        threading.Thread(target=self._authorize, args=(project, backend_host), daemon=True).start()

    def _authorize(self, project: str, backend_host: str) -> None:
        from backend.studio import StudioClient

        settings = self.settings
        header = basic_auth_header(settings.basic_auth_user, settings.basic_auth_pass.get_secret_value())
        try:
            client = StudioClient(settings.label_studio_url, settings.label_studio_api_key.get_secret_value())
            found = client.authorize_webhooks(int(project), backend_host, header)
        except Exception as exc:
            log.warning("project %s: could not add basic auth to its webhook: %s", project, exc)
            return
        if found:
            with self._lock:
                self._done.add(project)
            log.info("project %s: its webhook carries basic auth", project)
