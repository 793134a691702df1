"""`serve` at start, against the real Label Studio of the e2e suite: a token Label Studio refuses stops
it with the fix, Label Studio down is said once and shown on /status, and a model connected as Label
Studio's documentation describes (URL and basic auth in the project's settings, no BACKEND_URL)
gets its rounds."""

from __future__ import annotations

import json
import socket
import subprocess

import httpx
import pytest

from backend.devtools.local_studio import free_port
from backend.devtools.processes import BackendProcess
from backend.domain.versions import LIVE
from backend.resources import label_config
from backend.studio.client import basic_auth_header
from tests.e2e.conftest import backend_env
from tests.helpers import FIXTURES, study_form_result, wait_for

pytestmark = pytest.mark.parametrize("label_studio", ["sqlite"], indirect=True)
AUTH = ("lead", "startup-pass-1")
ROUND_TIMEOUT = 240


def serve(env: dict) -> subprocess.CompletedProcess:
    backend = BackendProcess(free_port(), env, AUTH)
    return subprocess.run(backend.command, env=backend.env, capture_output=True, text=True, timeout=180)


def test_a_token_label_studio_refuses_stops_serve_naming_the_fix(label_studio, model_path, tmp_path):
    env = backend_env(label_studio, model_path, tmp_path, AUTH, LABEL_STUDIO_API_KEY="wrong-token-4711")
    done = serve(env)
    assert done.returncode == 2, done.stderr
    assert "refused LABEL_STUDIO_API_KEY (HTTP 401)" in done.stderr
    assert "Account & Settings" in done.stderr, "the fix is named"
    assert "wrong-token-4711" not in done.stdout + done.stderr, "the token is never echoed"


def test_label_studio_down_at_start_is_said_once_and_shown_on_status(label_studio, model_path, tmp_path):
    with socket.socket() as held:  # bound, never listening: refused, and no other process gets the port
        held.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{held.getsockname()[1]}"
        env = backend_env(label_studio, model_path, tmp_path, AUTH, LABEL_STUDIO_URL=down)
        log = tmp_path / "backend.log"
        said = backend_down_story(BackendProcess(free_port(), env, AUTH, workers=2, log_path=log), down)
    assert "starting anyway" in said
    assert said.count("serving on ") == 1 and said.count("status page: ") == 1, "flushed once, by the master"


def backend_down_story(backend: BackendProcess, down: str) -> str:
    """Start the backend while Label Studio is down, check /status and /metrics; its log."""
    backend.start()
    try:

        def shown() -> str | None:
            page = httpx.get(f"{backend.url}/status", auth=AUTH, timeout=10).text
            return page if "unreachable" in page else None

        def in_metrics() -> dict | None:
            """Each server worker checks on its own: its first answer may come before its check."""
            return httpx.get(f"{backend.url}/metrics", auth=AUTH, timeout=10).json()["label_studio"]

        page = wait_for(shown, 60, "the status page to show Label Studio unreachable")
        assert f"Label Studio at {down} could not check the token" in page
        assert wait_for(in_metrics, 60, "/metrics to show the connection")["state"] == "unreachable"
    finally:
        backend.stop()
    return backend.log_path.read_text()


def test_a_model_connected_as_label_studio_documents_it_gets_rounds_without_backend_url(
    label_studio, model_path, tmp_path
):
    from label_studio_sdk.client import LabelStudio

    env = backend_env(label_studio, model_path, tmp_path, AUTH, MIN_ANNOTATIONS_TO_TRAIN="6")
    backend = BackendProcess(free_port(), env, AUTH, log_path=tmp_path / "backend.log")
    del backend.env["BACKEND_URL"]
    backend.start()
    try:
        sdk = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
        segments = [json.loads(line) for line in (FIXTURES / "segments.jsonl").read_text().splitlines()][:16]
        project = sdk.projects.create(
            title="connected by hand", label_config=label_config("interview_coding")
        )
        sdk.projects.import_tasks(
            id=project.id, request=[{"text": s["text"], "question": "?"} for s in segments]
        )
        sdk.ml.create(  # what the project's Settings → Model → Connect Model form sends
            url=backend.url,
            project=project.id,
            title="coding backend",
            auth_method="BASIC_AUTH",
            basic_auth_user=AUTH[0],
            basic_auth_pass=AUTH[1],
        )
        header = basic_auth_header(*AUTH)

        def webhook_authorized() -> bool:
            sdk.ml.list(
                project=project.id
            )  # Label Studio asks the backend's /setup, as its settings page does
            hooks = sdk.webhooks.list(project=str(project.id))
            return any((hook.headers or {}).get("Authorization") == header for hook in hooks)

        wait_for(webhook_authorized, 60, "the backend to put its basic auth on the project's webhook")
        tasks = sorted(task.id for task in sdk.tasks.list(project=project.id))
        for task_id, segment in zip(tasks[:6], segments, strict=False):
            sdk.annotations.create(id=task_id, result=study_form_result(segment["codes"]))

        def trained() -> str | None:
            serving = backend.metrics().get(str(project.id), {}).get("current_version")
            return serving if serving and sdk.projects.get(id=project.id).model_version == LIVE else None

        version = wait_for(trained, ROUND_TIMEOUT, "a round started by the annotations' webhooks")
        assert version.startswith("v")
    finally:
        backend.stop()
    said = (tmp_path / "backend.log").read_text()
    assert "BACKEND_URL is not set; Label Studio's record of this backend gives " + backend.url in said
