"""The HTTP layer: protocol routes, auth and bad requests (no ML: the scheduler is a recorder)."""

import base64

import pytest

from backend.config import load_settings
from backend.resources import label_config
from backend.server.app import create_app
from backend.storage.inbox import Inbox
from backend.storage.layout import ProjectDir
from backend.storage.state import LaneStatus, StateStore
from tests.fakes import RecordingQueue

CONFIG = label_config("generic_multilabel")


@pytest.fixture
def scheduler():
    return RecordingQueue()


@pytest.fixture
def client(tmp_path, scheduler):
    app = create_app(load_settings(model_dir=tmp_path, allow_unauthenticated=True), scheduler)
    return app.test_client()


def test_health(client):
    for path in ("/", "/health"):
        response = client.get(path)
        assert response.status_code == 200 and response.json["status"] == "UP"
        assert response.json["model_kind"] == "setfit"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("{not json", 400, "JSON object"),
        ("[1, 2]", 400, "JSON object"),
        ('{"project": {"id": 1}}', 400, 'missing "action"'),
        ('{"action": "EXPLODE", "project": {"id": 1}}', 400, "unknown action 'EXPLODE'"),
        ('{"action": "ANNOTATION_CREATED"}', 400, "missing or invalid project id"),
        ('{"action": "ANNOTATION_CREATED", "project": {"id": "../x"}}', 400, "invalid project id"),
    ],
)
def test_bad_webhooks_get_a_clear_4xx_and_the_server_stays_healthy(client, scheduler, body, status, message):
    response = client.post("/webhook", data=body, content_type="application/json")
    assert response.status_code == status
    assert message in response.json["error"]
    assert scheduler.requests == []
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        ("ANNOTATION_CREATED", "train"),
        ("ANNOTATION_UPDATED", "train"),
        ("ANNOTATIONS_DELETED", "train"),
        ("START_TRAINING", "train"),
        ("TASKS_CREATED", "predict"),
    ],
)
def test_events_request_background_work(client, scheduler, action, kind):
    response = client.post("/webhook", json={"action": action, "project": {"id": 3}})
    assert response.status_code == 202 and response.json["work"] == kind
    body = [("3", "body")] if action == "START_TRAINING" else []  # the button also fine-tunes the body
    early = [("3", "embed")] if action == "TASKS_CREATED" else []  # no round yet: encode the new tasks
    assert scheduler.requests == [("3", kind), *body, *early]


def test_an_annotation_webhook_leaves_the_annotation_for_the_fast_loop(client, scheduler, tmp_path):
    annotation = {"id": 7, "result": [], "completed_by": 2, "was_cancelled": False, "ground_truth": True}
    task = {"id": 40, "data": {"text": "Ich schlafe schlecht."}, "annotations": []}
    created = {"action": "ANNOTATION_CREATED", "project": {"id": 3}, "annotation": annotation, "task": task}
    assert client.post("/webhook", json=created).status_code == 202
    assert (
        client.post("/webhook", json={"action": "ANNOTATIONS_DELETED", "project": {"id": 3}}).status_code
        == 202
    )
    kept, deleted = Inbox(tmp_path / "3" / "inbox").take()
    assert kept.task_id == 40 and kept.task_data == task["data"]
    assert kept.annotation["completed_by"] == 2 and "ground_truth" not in kept.annotation
    assert deleted.annotation is None, "deleted annotations: the round reads everything"
    assert scheduler.requests == [("3", "train"), ("3", "train")]


def test_skips_and_unrelated_events_request_nothing(client, scheduler):
    skipped = {"action": "ANNOTATION_CREATED", "project": {"id": 3}, "annotation": {"was_cancelled": True}}
    assert client.post("/webhook", json=skipped).json["status"] == "ignored"
    assert (
        client.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 3}}).status_code == 200
    )
    assert scheduler.requests == []


def test_setup_validates_the_label_config(client):
    response = client.post("/setup", json={"project": "5.1700000000", "schema": CONFIG})
    assert response.status_code == 200 and response.json["model_version"] == "untrained"
    no_choices = "<View><Text name='t' value='$t'/></View>"
    response = client.post("/setup", json={"project": "5.1700000000", "schema": no_choices})
    assert response.status_code == 422
    assert "no <Choices> tag bound to a <Text>" in response.json["error"]


def test_setup_asks_once_for_the_pool_to_be_encoded_before_the_first_round(client, scheduler, tmp_path):
    setup = {"project": "5.1700000000", "schema": CONFIG}
    assert client.post("/setup", json=setup).status_code == 200
    assert scheduler.requests == [("5", "embed")]
    states = StateStore(ProjectDir(tmp_path, "5"))
    states.update(lambda state: setattr(state.body, "status", LaneStatus.ENCODING))
    client.post("/setup", json=setup)
    assert scheduler.requests == [("5", "embed")], "not again while the lane is at it"
    states.update(lambda state: setattr(state.body, "status", LaneStatus.IDLE))
    states.update(lambda state: setattr(state, "current_version", "v1-20261202"))
    client.post("/setup", json=setup)
    assert scheduler.requests == [("5", "embed")], "not once a version serves: its rounds encode"


def test_the_pool_is_not_encoded_early_without_the_two_speed_loop(tmp_path, scheduler):
    settings = load_settings(model_dir=tmp_path, allow_unauthenticated=True, fast_loop=False)
    client = create_app(settings, scheduler).test_client()
    client.post("/setup", json={"project": "5.1700000000", "schema": CONFIG})
    client.post("/webhook", json={"action": "TASKS_CREATED", "project": {"id": 5}})
    assert scheduler.requests == [("5", "predict")]


def test_predict_before_any_round_gives_empty_results_in_order(client):
    tasks = [{"id": i, "data": {"text": f"segment {i}"}} for i in range(3)]
    response = client.post("/predict", json={"tasks": tasks, "project": "5.17", "label_config": CONFIG})
    assert response.status_code == 200
    assert [r["result"] for r in response.json["results"]] == [[], [], []]


def test_predict_needs_a_task_list(client):
    response = client.post("/predict", json={"tasks": "nope", "project": "5.17", "label_config": CONFIG})
    assert response.status_code == 400 and '"tasks" must be a list' in response.json["error"]


def test_metrics_and_versions_report_each_project(client, tmp_path):
    def failed(state):
        state.fast.status, state.fast.error, state.labeled = LaneStatus.FAILED, "Label Studio unreachable", 12
        state.body.status, state.body.error = LaneStatus.FAILED, "killed by signal 9"

    StateStore(ProjectDir(tmp_path, "9")).update(failed)
    projects = client.get("/metrics").json["projects"]
    assert projects["9"]["state"] == "failed"
    assert (projects["9"]["body_state"], projects["9"]["body_error"]) == ("failed", "killed by signal 9")
    assert projects["9"]["last_error"] == "Label Studio unreachable"
    assert projects["9"]["labeled"] == 12 and projects["9"]["pending"] == []
    assert client.get("/versions").json == {"versions": []}


def test_only_projects_are_listed_never_what_else_lives_in_model_dir(client, tmp_path):
    """Issue 40: /status and /metrics listed MLflow's artifact folder as a project called "mlartifacts"."""
    StateStore(ProjectDir(tmp_path, "9")).update(lambda state: setattr(state, "labeled", 3))
    (tmp_path / "mlartifacts" / "1" / "abc").mkdir(parents=True)
    for folder in (".embeddings/0123abcd", ".slots", "0123", "12a", "lost+found"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "mlflow.db").write_bytes(b"SQLite format 3\0")
    assert list(client.get("/metrics").json["projects"]) == ["9"]
    page = client.get("/status").get_data(as_text=True)
    assert "/status/9" in page
    assert not any(name in page for name in ("mlartifacts", "embeddings", "0123", "12a", "lost+found"))


def test_basic_auth_protects_every_route_but_health(tmp_path, scheduler):
    settings = load_settings(model_dir=tmp_path, basic_auth_user="lead", basic_auth_pass="s3cret")
    client = create_app(settings, scheduler).test_client()
    assert client.get("/health").status_code == 200, "probes cannot send credentials; it reveals nothing"
    for path in ("/", "/metrics", "/versions"):
        assert client.get(path).status_code == 401, path
    wrong = {"Authorization": "Basic " + base64.b64encode(b"lead:guess").decode()}
    assert (
        client.post(
            "/webhook", json={"action": "START_TRAINING", "project": {"id": 1}}, headers=wrong
        ).status_code
        == 401
    )
    right = {"Authorization": "Basic " + base64.b64encode(b"lead:s3cret").decode()}
    assert client.get("/metrics", headers=right).status_code == 200
    assert scheduler.requests == []


def test_setup_keeps_how_coders_see_each_code_for_the_status_page(client, tmp_path):
    config = label_config("interview_coding")
    assert client.post("/setup", json={"project": "5.1700000000", "schema": config}).status_code == 200
    names = StateStore(ProjectDir(tmp_path, "5")).read().code_names
    assert names["physical_health"] == "Physical health" and names["freq_mentioned"] == "Yes"
    written = ProjectDir(tmp_path, "5").state.stat().st_mtime_ns
    client.post("/setup", json={"project": "5.1700000000", "schema": config})
    assert ProjectDir(tmp_path, "5").state.stat().st_mtime_ns == written, "written only when they change"
