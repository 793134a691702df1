"""`coding-backend init` against the real Label Studio of the e2e suite and the backend under gunicorn:
a project set up from nothing, the same command run again (nothing doubled), more segments later,
and each way it fails (a wrong token, SSRF protection, a backend Label Studio cannot reach, a label
config without Choices) told with its fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backend.devtools.local_studio import LocalLabelStudio, free_port
from backend.devtools.processes import BackendProcess
from backend.studio.client import basic_auth_header
from tests.e2e.conftest import backend_env
from tests.helpers import FIXTURES, wait_for

pytestmark = pytest.mark.parametrize("label_studio", ["sqlite"], indirect=True)
AUTH = ("lead", "init-pass-1")
TITLE = "Init test"


@pytest.fixture(scope="module")
def backend(label_studio, model_path, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("init-backend")
    env = backend_env(label_studio, model_path, workdir, AUTH)
    server = BackendProcess(free_port(), env, AUTH, log_path=workdir / "backend.log").start()
    yield server
    server.stop()


def init(studio, backend_url: str, *args: str, token: str | None = None) -> subprocess.CompletedProcess:
    env = {
        "LABEL_STUDIO_URL": studio.url,
        "LABEL_STUDIO_API_KEY": token or studio.token,
        "BACKEND_URL": backend_url,
        "BASIC_AUTH_USER": AUTH[0],
        "BASIC_AUTH_PASS": AUTH[1],
        "PATH": "/usr/bin:/bin",
    }
    command = [
        sys.executable,
        "-m",
        "backend.cli",
        "init",
        "--title",
        TITLE,
        "--webhook-timeout",
        "30",
        *args,
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def segments_file(path: Path, count: int) -> Path:
    rows = [json.loads(line) for line in (FIXTURES / "segments.jsonl").read_text().splitlines()][:count]
    path.write_text(
        "".join(json.dumps({"id": f"s{n}", "text": r["text"]}) + "\n" for n, r in enumerate(rows))
    )
    return path


def project_of(sdk, title: str) -> list:
    return [p for p in sdk.projects.list() if p.title == title]


def test_init_sets_up_a_project_and_running_it_again_changes_nothing(label_studio, backend, tmp_path):
    from label_studio_sdk.client import LabelStudio

    sdk = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
    data = segments_file(tmp_path / "segments.jsonl", 12)

    first = init(label_studio, backend.url, "--data", str(data), "--public-url", "http://ls.example:8080")
    assert first.returncode == 0, first.stdout + first.stderr
    (project,) = project_of(sdk, TITLE)
    assert "created" in first.stdout and "12 imported, 0 already there" in first.stdout
    assert f"ready: http://ls.example:8080/projects/{project.id}/data" in first.stdout
    assert "physical_health" in project.label_config, "the study's form by default"
    assert len(list(sdk.tasks.list(project=project.id, fields="task_only"))) == 12
    hooks = list(sdk.webhooks.list(project=str(project.id)))
    assert [h.headers.get("Authorization") for h in hooks] == [basic_auth_header(*AUTH)]
    assert [ml.url for ml in sdk.ml.list(project=project.id)] == [backend.url]

    again = init(label_studio, backend.url, "--data", str(data))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "exists, reused" in again.stdout and "0 imported, 12 already there" in again.stdout
    assert len(project_of(sdk, TITLE)) == 1
    assert len(list(sdk.tasks.list(project=project.id, fields="task_only"))) == 12
    assert len(list(sdk.ml.list(project=project.id))) == 1, "the connection is renewed, not doubled"

    more = init(label_studio, backend.url, "--data", str(segments_file(tmp_path / "more.jsonl", 15)))
    assert more.returncode == 0 and "3 imported, 12 already there" in more.stdout, more.stdout + more.stderr


def test_a_deleted_webhook_is_made_again_with_the_backends_credentials(label_studio, backend):
    from label_studio_sdk.client import LabelStudio

    sdk = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
    assert init(label_studio, backend.url, "--title", "Init webhook").returncode == 0
    (project,) = project_of(sdk, "Init webhook")
    for hook in sdk.webhooks.list(project=str(project.id)):
        sdk.webhooks.delete(hook.id)
    again = init(label_studio, backend.url, "--title", "Init webhook")
    assert again.returncode == 0, again.stdout + again.stderr
    hooks = list(sdk.webhooks.list(project=str(project.id)))
    assert [(h.url, h.headers.get("Authorization")) for h in hooks] == [
        (f"{backend.url}/webhook", basic_auth_header(*AUTH))
    ]


def test_segments_from_a_csv_file(label_studio, backend, tmp_path):
    from label_studio_sdk.client import LabelStudio

    data = tmp_path / "segments.csv"
    data.write_text('id,question,text\na1,How are you?,"My knee hurts, a lot."\na2,,I like school.\n')
    result = init(label_studio, backend.url, "--title", "Init CSV", "--data", str(data))
    assert result.returncode == 0, result.stdout + result.stderr
    sdk = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
    (project,) = project_of(sdk, "Init CSV")
    texts = sorted(t.data["text"] for t in sdk.tasks.list(project=project.id, fields="task_only"))
    assert texts == ["I like school.", "My knee hurts, a lot."]


def test_a_wrong_token_is_named_with_its_fix_and_never_echoed(label_studio, backend):
    result = init(label_studio, backend.url, token="not-the-token-1234")
    assert result.returncode == 1
    assert "LABEL_STUDIO_API_KEY is not a valid token" in result.stderr
    assert "not-the-token-1234" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_a_backend_label_studio_cannot_reach_is_named(label_studio, backend):
    result = init(label_studio, f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "cannot reach the backend at BACKEND_URL" in result.stderr, result.stderr
    assert "connect to ML backend" in result.stderr and "<a href" not in result.stderr


def test_a_label_config_without_choices_is_refused_before_anything_is_made(label_studio, backend, tmp_path):
    config = tmp_path / "form.xml"
    config.write_text('<View><Text name="text" value="$text"/></View>')
    result = init(label_studio, backend.url, "--title", "No choices", "--label-config", str(config))
    assert result.returncode == 2
    assert "no <Choices> tag" in result.stderr


def test_missing_ssrf_flags_are_named_with_their_fix(label_studio, backend, tmp_path, seed_studio_dir):
    guarded = LocalLabelStudio(
        Path(label_studio.executable),
        data_dir=seed_studio_dir(tmp_path / "guarded"),
        extra_env={"SSRF_PROTECTION_ENABLED": "true", "ML_BLOCK_LOCAL_IP": "true"},
    )
    with guarded:
        result = init(guarded, backend.url)
    assert result.returncode == 1
    assert "SSRF_PROTECTION_ENABLED=false and ML_BLOCK_LOCAL_IP=false" in result.stderr, result.stderr


def test_evidence_on_request_a_shipped_form_by_name_with_a_labels_tag_added(label_studio, backend):
    from label_studio_sdk.client import LabelStudio

    from backend.domain.scheme import parse_label_config

    sdk = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
    title = "Init with evidence"
    done = init(
        label_studio, backend.url, "--title", title, "--label-config", "generic_multilabel", "--evidence"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (project,) = project_of(sdk, title)
    evidence = parse_label_config(project.label_config).evidence
    assert evidence is not None and set(evidence.labels) == {"code_a", "code_b", "code_c"}


def test_a_codebook_from_another_tool_makes_a_working_project(label_studio, backend, tmp_path):
    """A REFI-QDA codebook (hand-written from the standard, German names) becomes the project's
    form; Label Studio accepts it, the backend's /setup reads it, and a coder's codes reach the
    backend under the codebook's names."""
    from label_studio_sdk.client import LabelStudio

    codebook = FIXTURES / "refi_qda" / "codebook.qdc"
    data = segments_file(tmp_path / "segments.jsonl", 4)
    result = init(
        label_studio,
        backend.url,
        "--title",
        "Init codebook",
        "--codebook",
        str(codebook),
        "--data",
        str(data),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sdk = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
    (project,) = project_of(sdk, "Init codebook")
    assert (
        'value="Körper › Schmerzen"' in project.label_config and "physical_health" not in project.label_config
    )
    assert [ml.url for ml in sdk.ml.list(project=project.id)] == [backend.url], "Label Studio ran /setup"
    task = next(iter(sdk.tasks.list(project=project.id, fields="task_only")))
    value = {"choices": ["gefuhle__sorgen"]}  # the UI stores a choice's alias
    result = [{"from_name": "codes", "to_name": "text", "type": "choices", "value": value}]
    sdk.annotations.create(id=task.id, result=result)
    counted = lambda: backend.metrics().get(str(project.id), {}).get("labeled")  # noqa: E731
    assert wait_for(counted, 120, "the coded segment counted by the backend") == 1
