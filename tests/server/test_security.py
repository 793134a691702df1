"""The audit's findings on the HTTP layer, one test each: secure by default, bounded, no 500s."""

import base64
import json
import logging

import pytest

from backend.config import ConfigError, load_settings
from backend.resources import label_config
from backend.server.app import create_app
from backend.server.auth import AuthConfigError, WebhookAuthorizer
from backend.storage.inbox import AnnotationEvent, Inbox, blocks
from backend.storage.layout import ProjectDir
from backend.storage.state import StateStore
from tests.fakes import FakeStudio, RecordingQueue

CONFIG = label_config("generic_multilabel")
AUTH = {"Authorization": "Basic " + base64.b64encode(b"lead:s3cret").decode()}


def app_with(tmp_path, queue=None, **settings):
    settings = {"basic_auth_user": "lead", "basic_auth_pass": "s3cret", **settings}
    return create_app(load_settings(model_dir=tmp_path, **settings), queue or RecordingQueue()).test_client()


def test_an_open_server_is_refused_unless_explicitly_waived(tmp_path):
    with pytest.raises(AuthConfigError, match="refusing to serve without authentication"):
        create_app(load_settings(model_dir=tmp_path), RecordingQueue())
    waived = create_app(load_settings(model_dir=tmp_path, allow_unauthenticated=True), RecordingQueue())
    assert waived.test_client().get("/metrics").status_code == 200


@pytest.mark.parametrize("secret", ["BASIC_AUTH_PASS", "LABEL_STUDIO_API_KEY"])
def test_the_placeholder_secrets_of_env_example_are_refused_without_showing_them(monkeypatch, secret):
    monkeypatch.setenv("BASIC_AUTH_USER", "backend")
    monkeypatch.setenv("BASIC_AUTH_PASS", "a-real-password")
    monkeypatch.setenv(secret, "change-me-to-a-long-random-token")
    with pytest.raises(ConfigError, match=f"{secret}: still the placeholder") as error:
        load_settings()
    assert "long-random" not in str(error.value)


@pytest.mark.parametrize(
    "project", ["²", "١٢٣", "９", "1" * 13, "1" * 300, "-1", "1e3", True, {"id": "12 "}, [1]]
)
def test_only_ascii_decimal_project_ids_of_sane_length_are_accepted(tmp_path, project):
    client = app_with(tmp_path)
    response = client.post("/webhook", json={"action": "START_TRAINING", "project": project}, headers=AUTH)
    assert response.status_code == 400 and "invalid project id" in response.json["error"]
    assert list(tmp_path.iterdir()) == [], "no directory for a refused id"


def test_a_project_id_names_one_directory_however_it_is_written(tmp_path):
    queue = RecordingQueue()
    client = app_with(tmp_path, queue)
    for project in ("123", 123, "0123", "123.1700000000"):
        client.post("/webhook", json={"action": "START_TRAINING", "project": project}, headers=AUTH)
    assert {project for project, _ in queue.requests} == {"123"}


def test_request_bodies_and_predict_batches_are_bounded(tmp_path):
    client = app_with(tmp_path, max_request_bytes=20_000, max_predict_tasks=3)
    huge = json.dumps({"action": "START_TRAINING", "project": 1, "padding": "x" * 30_000})
    response = client.post("/webhook", data=huge, content_type="application/json", headers=AUTH)
    assert response.status_code == 413 and "error" in response.json
    tasks = [{"id": i, "data": {"text": "t"}} for i in range(4)]
    body = {"tasks": tasks, "project": "1.17", "label_config": CONFIG}
    response = client.post("/predict", json=body, headers=AUTH)
    assert response.status_code == 400 and "at most 3 tasks per /predict" in response.json["error"]


def test_deeply_nested_json_is_a_400_not_a_500(tmp_path):
    client = app_with(tmp_path)
    nested = "[" * 100_000 + "]" * 100_000
    response = client.post("/webhook", data=nested, content_type="application/json", headers=AUTH)
    assert response.status_code == 400


def test_a_webhook_whose_annotation_is_not_an_object_is_still_handled(tmp_path):
    queue = RecordingQueue()
    client = app_with(tmp_path, queue)
    body = {"action": "ANNOTATION_CREATED", "project": {"id": 4}, "annotation": "not an object"}
    assert client.post("/webhook", json=body, headers=AUTH).status_code == 202
    assert queue.requests == [("4", "train")]


def test_a_non_ascii_authorization_header_is_a_401(tmp_path):
    client = app_with(tmp_path)
    response = client.get("/metrics", headers={"Authorization": "Basic ümlaut-€"})
    assert response.status_code == 401


def test_a_state_file_that_is_json_but_not_an_object_does_not_break_metrics(tmp_path):
    client = app_with(tmp_path)
    directory = ProjectDir(tmp_path, "8")
    directory.path.mkdir(parents=True)
    directory.state.write_text("[1, 2, 3]")
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200 and response.json["projects"]["8"]["state"] == "idle"


def with_studio_key(tmp_path, **extra):
    return load_settings(
        model_dir=tmp_path,
        basic_auth_user="lead",
        basic_auth_pass="s3cret",
        label_studio_api_key="tok-123456",
        **extra,
    )


def test_the_configured_backend_url_not_the_host_header_decides_which_webhook_gets_credentials(tmp_path):
    settings = with_studio_key(tmp_path, backend_url="http://backend:9090")
    studio = FakeStudio()
    WebhookAuthorizer(settings.server, client=lambda: studio).authorize("5")
    assert studio.calls == [("authorize", "backend:9090")]


def test_a_webhook_label_studio_makes_just_after_the_setup_that_asked_gets_credentials(tmp_path):
    """Connecting a model, Label Studio calls /setup, then makes the webhook: the first look finds none."""
    settings = with_studio_key(tmp_path, backend_url="http://backend:9090")
    studio = FakeStudio()
    found = iter([0, 0, 1])
    studio.authorize_webhooks = lambda project, host, authorization: next(found)
    WebhookAuthorizer(settings.server, client=lambda: studio).follow_up("5")
    assert next(found, "all looked at") == "all looked at", "it looked until the webhook was there"


def test_without_backend_url_only_the_url_label_studio_records_for_us_gets_credentials(tmp_path, caplog):
    """Label Studio's record of the project's ML backend says where it calls us (as its documentation
    connects a model: URL and basic auth in the project's settings); another backend's never counts."""
    caplog.set_level(logging.INFO, logger="backend.server.auth")
    settings = with_studio_key(tmp_path)
    studio = FakeStudio()
    studio.ml_backends = [("http://other.example:9090", "someone"), ("http://backend.internal:9090", "lead")]
    authorizer = WebhookAuthorizer(settings.server, client=lambda: studio)
    authorizer.authorize("5")
    authorizer.authorize("5")
    assert studio.calls == [("authorize", "backend.internal:9090")] * 2
    said = [r.getMessage() for r in caplog.records if "BACKEND_URL is not set" in r.getMessage()]
    assert said == [
        "project 5: BACKEND_URL is not set; Label Studio's record of this backend gives "
        "http://backend.internal:9090"
    ], "said once per project"


def test_the_state_of_a_version_serving_survives_a_truncated_state_file(tmp_path):
    from backend.storage.versions import ModelStore
    from tests.storage.test_versions import ConstantModel

    version = ModelStore(tmp_path).save(
        "3", ConstantModel(), n_labeled=12, training_seconds=1, config={}, extra={"round": "head"}
    )
    states = StateStore(ProjectDir(tmp_path, "3"))
    states.update(lambda state: setattr(state, "current_version", version.name))
    states.dir.state.write_text('{"current_version": "v1-')  # a power cut mid-write (before fsync)
    client = app_with(tmp_path)
    project = client.get("/metrics", headers=AUTH).json["projects"]["3"]
    assert project["current_version"] == version.name, "recovered from the version directories"
    setup = client.post("/setup", json={"project": "3.1700000000", "schema": CONFIG}, headers=AUTH)
    assert setup.json["model_version"] == version.name


def test_half_written_files_a_crash_left_are_removed_at_start_and_fresh_ones_kept(tmp_path):
    import os
    import time

    project = ProjectDir(tmp_path, "2")
    project.path.mkdir(parents=True)
    old_file = project.path / ".state.json.0123456789ab.partial"
    old_dir = project.path / ".partial-abc"
    fresh = project.path / ".pool.json.ba9876543210.partial"
    for path in (old_file, fresh):
        path.write_text("half")
    old_dir.mkdir()
    an_hour_and_more = time.time() - 3700
    for path in (old_file, old_dir):
        os.utime(path, (an_hour_and_more, an_hour_and_more))
    app_with(tmp_path)
    assert not old_file.exists() and not old_dir.exists() and fresh.exists()


def model_dir_bytes(root) -> int:
    """What MODEL_DIR's files take on disk, each at least a block (as the inbox caps count)."""
    return sum(blocks(path.stat().st_size) for path in root.rglob("*") if path.is_file())


def test_a_webhook_flood_for_many_projects_keeps_model_dir_within_the_inbox_caps(tmp_path):
    """Issue 40: 150 webhooks of 0.9 MB task data each, for a project whose rounds could not run, grew
    MODEL_DIR by 129 MB in seconds. Now the inboxes hold at most INBOX_MAX_BYTES in all."""
    caps = {"inbox_max_bytes_per_project": 200_000, "inbox_max_bytes": 1_000_000}
    client = app_with(tmp_path, **caps)  # the queue records: no round runs
    text = "Ich schlafe schlecht 😴 " * 2000  # 50 KB: the coded text itself is long
    for n in range(100):
        project = {"id": 100 + n % 20} | ({"label_config": CONFIG} if n // 20 % 2 == 0 else {})
        task = {"id": n, "data": {"text": text, "html": "<p>" + "x" * 900_000}}
        annotation = {"id": n, "result": [], "completed_by": 1}
        body = {"action": "ANNOTATION_CREATED", "project": project, "task": task, "annotation": annotation}
        assert client.post("/webhook", json=body, headers=AUTH).status_code == 202
    assert model_dir_bytes(tmp_path) <= caps["inbox_max_bytes"]
    projects = [tmp_path / str(100 + n) for n in range(20)]
    assert all(model_dir_bytes(project) <= caps["inbox_max_bytes_per_project"] for project in projects)
    kept = [
        AnnotationEvent.model_validate_json(path.read_bytes()) for path in tmp_path.glob("*/inbox/*.json")
    ]
    assert kept and all(event.task_data == {"text": text} for event in kept), "the coded text, no more"
    assert all(Inbox(project / "inbox").take() is None for project in projects), "dropped: rounds read all"
