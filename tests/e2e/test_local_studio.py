"""End to end against a real Label Studio: the whole write-back recipe, no mocks.

Starts Label Studio 1.23.2 from its own virtualenv (env LABEL_STUDIO_VENV, default <repo>/.ls-venv;
installed on first use, which takes minutes), then checks that predictions written with scores
make uncertainty sampling serve the lowest-scored unlabeled task first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from backend.devtools.local_studio import LocalLabelStudio
from backend.research.corpus import read_segments
from backend.studio.client import StudioClient
from backend.studio.setup import ProjectSetter, segment_tasks

LABEL_CONFIG = """
<View>
  <Text name="text" value="$text"/>
  <Choices name="codes" toName="text" choice="multiple">
    <Choice value="A"/><Choice value="B"/><Choice value="C"/>
  </Choices>
</View>
"""
TEXTS = ["one", "two", "three", "four", "five"]
SCORES = [0.8, 0.15, 0.6, 0.4]  # for the four unannotated tasks; the second is the most uncertain


def _choices(codes: list[str], score: float | None = None) -> list[dict]:
    item: dict = {"from_name": "codes", "to_name": "text", "type": "choices", "value": {"choices": codes}}
    if score is not None:
        item["score"] = score
    return [item]


def _annotated_query() -> str:
    """`only_annotated` is ignored by Label Studio 1.23: filter on total_annotations instead."""
    item = {"filter": "filter:tasks:total_annotations", "operator": "greater", "type": "Number", "value": 0}
    return json.dumps({"filters": {"conjunction": "and", "items": [item]}})


@pytest.fixture(scope="module")
def studio(label_studio) -> LocalLabelStudio:
    """The session's Label Studio (tests/e2e/conftest.py); one server for all end-to-end tests."""
    return label_studio


@pytest.fixture(scope="module")
def sdk(studio):
    from label_studio_sdk.client import LabelStudio

    return LabelStudio(base_url=studio.url, api_key=studio.token)


@pytest.fixture(scope="module")
def http(studio) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Token {studio.token}"}
    with httpx.Client(base_url=studio.url, headers=headers, timeout=60) as client:
        yield client


def test_health_and_identity(studio, sdk):
    assert httpx.get(f"{studio.url}/health", timeout=10).json() == {"status": "UP"}
    me = sdk.users.whoami()
    assert me.email == studio.username
    assert studio.password not in repr(studio)
    assert studio.token not in repr(studio)


def test_write_back_recipe(studio, sdk, http):
    project = sdk.projects.create(title="e2e write-back", label_config=LABEL_CONFIG)
    tasks = [{"text": text} for text in TEXTS]
    imported = sdk.projects.import_tasks(project.id, request=tasks, return_task_ids=True)
    assert imported.task_count == len(TEXTS)
    task_ids = list(imported.task_ids)

    # A coder's annotation on the first task, through the API.
    annotation = sdk.annotations.create(task_ids[0], result=_choices(["A", "C"]))
    assert annotation.completed_by == sdk.users.whoami().id
    assert sdk.users.get(annotation.completed_by).email == studio.username

    # All tasks, paged (page_size 2 over 5 tasks), and the annotated ones with their annotations.
    assert sorted(t.id for t in sdk.tasks.list(project=project.id, page_size=2, fields="all")) == task_ids
    annotated = list(sdk.tasks.list(project=project.id, page_size=2, fields="all", query=_annotated_query()))
    assert [t.id for t in annotated] == [task_ids[0]]
    [stored] = annotated[0].annotations
    assert stored["result"][0]["value"]["choices"] == ["A", "C"]
    assert stored["completed_by"] == annotation.completed_by
    assert stored["was_cancelled"] is False

    # Predictions for the unannotated tasks: lower score = more informative = served first.
    unlabeled = task_ids[1:]
    predictions = [
        {"task": task, "model_version": "v1", "score": score, "result": _choices(["B"], score)}
        for task, score in zip(unlabeled, SCORES, strict=True)
    ]
    assert sdk.projects.import_predictions(project.id, request=predictions).created == len(unlabeled)
    # With the import flag the tests' Label Studio runs with (devtools/local_studio.py), an import
    # takes a choice the form does not have, unchecked (without it, such a prediction is dropped).
    invalid = {"task": unlabeled[0], "model_version": "unchecked", "score": 0.0, "result": _choices(["Z"])}
    assert sdk.projects.import_predictions(project.id, request=[invalid]).created == 1

    updated = sdk.projects.update(project.id, sampling="Uncertainty sampling", model_version="v1")
    assert (updated.sampling, updated.model_version) == ("Uncertainty sampling", "v1")

    response = http.get(f"/api/projects/{project.id}/next")
    response.raise_for_status()
    assert response.json()["id"] == unlabeled[SCORES.index(min(SCORES))]


def test_old_model_version_is_deleted(sdk, http):
    project = sdk.projects.create(title="e2e versions", label_config=LABEL_CONFIG)
    imported = sdk.projects.import_tasks(project.id, request=[{"text": "x"}], return_task_ids=True)
    task_ids = list(imported.task_ids)
    for version in ("old", "new"):
        rows = [{"task": task_ids[0], "model_version": version, "score": 0.5, "result": _choices([])}]
        assert sdk.projects.import_predictions(project.id, request=rows).created == 1
    sdk.projects.update(project.id, model_version="new")

    versions = f"/api/projects/{project.id}/model-versions/"
    response = http.request("DELETE", versions, json={"model_version": "old"})
    response.raise_for_status()
    assert response.json() == {"deleted_predictions": 1}
    assert http.get(versions).json() == {"new": 1}
    assert sdk.projects.get(project.id).model_version == "new"


def test_webhook_with_authorization_header(sdk):
    project = sdk.projects.create(title="e2e webhooks", label_config=LABEL_CONFIG)
    hook = sdk.webhooks.create(
        url="http://127.0.0.1:9/webhook", project=project.id, send_for_all_actions=True, send_payload=True
    )
    assert [w.id for w in sdk.webhooks.list(project=str(project.id))] == [hook.id]
    sdk.webhooks.update(hook.id, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    [listed] = sdk.webhooks.list(project=str(project.id))
    assert listed.headers == {"Authorization": "Basic dXNlcjpwYXNz"}
    sdk.webhooks.delete(hook.id)


def test_studio_client_with_personal_access_token(studio, sdk, http):
    """LABEL_STUDIO_API_KEY may be a personal access token (a JWT refresh token), not only a legacy one."""
    from backend.studio.client import StudioClient

    project = sdk.projects.create(title="e2e personal access token", label_config=LABEL_CONFIG)
    sdk.projects.import_tasks(project.id, request=[{"text": "pat"}])

    # Personal access tokens are on for a new organization; say so explicitly, keeping legacy tokens on.
    enabled = {"api_tokens_enabled": True, "legacy_api_tokens_enabled": True}
    response = http.post("/api/jwt/settings", json=enabled)
    response.raise_for_status()
    assert response.json() == enabled
    response = http.post("/api/token/")  # one per user: a second one is refused with 409
    assert response.status_code == 201, response.status_code
    pat = response.json()["token"]
    is_signed_jwt = pat.count(".") == 2  # a bool, so a failing assert never shows the token
    assert is_signed_jwt

    try:
        client = StudioClient(studio.url, pat)
        assert client.label_config(project.id) == project.label_config
        assert "Choices" in client.label_config(project.id)
        tasks = list(client.tasks(project.id, annotated=False))
        assert [task.data for task in tasks] == [{"text": "pat"}]
        assert list(client.tasks(project.id, annotated=True)) == []
    finally:
        http.post("/api/token/blacklist/", json={"refresh": pat})  # revoke it


def test_project_reads_ask_for_the_one_field_they_need(studio, sdk):
    """`include` names the field: Label Studio then counts no tasks, annotations or predictions (which
    grows with the project), and still answers with the field itself."""
    client = StudioClient(studio.url, studio.token)
    project = sdk.projects.create(title="e2e project reads", label_config=LABEL_CONFIG)
    imported = sdk.projects.import_tasks(
        project.id, request=[{"text": "one"}, {"text": "two"}], return_task_ids=True
    )
    first = {
        "task": next(iter(imported.task_ids)),
        "model_version": "live",
        "score": 0.5,
        "result": _choices([]),
    }
    sdk.projects.import_predictions(project.id, request=[first])
    client.serve_version(project.id, "live")
    assert client.label_config(project.id) == project.label_config
    assert client.served_version(project.id) == "live"
    assert client.task_count(project.id) == 2
    counted = sdk.projects.get(project.id, request_options={"additional_query_parameters": {"include": "id"}})
    assert counted.task_number is None, "a count not named is left out (else `include` does nothing)"


def test_a_segment_with_a_nul_character_is_imported_without_it(studio, sdk, tmp_path):
    """The study's data holds two; Label Studio on PostgreSQL answered the whole import with a 500."""
    path = tmp_path / "segments.jsonl"
    texts = ["Ich wollte\u0000 mit dir reden.", "Mein Knie tut weh."]
    path.write_text("".join(json.dumps({"id": f"s{n}", "text": t}) + "\n" for n, t in enumerate(texts)))
    setter = ProjectSetter(StudioClient(studio.url, studio.token))
    project, _ = setter.project("NUL characters", LABEL_CONFIG)
    tasks = segment_tasks(read_segments(path, require_codes=False), "text")
    assert setter.import_tasks(project, tasks) == (2, 0)
    held = sorted(task.data["text"] for task in sdk.tasks.list(project=project, fields="task_only"))
    assert held == ["Ich wollte mit dir reden.", "Mein Knie tut weh."]
    assert setter.import_tasks(project, tasks) == (0, 2), "nothing doubled on a second run"


def test_a_head_imported_then_rewritten_in_place(studio, sdk, http, tmp_path):
    """WRITE_BY_IMPORT against the real thing: a head's new tasks go in import calls of 100, each task
    holds one prediction of ours under the served name, Label Studio serves the most informative, and
    the next version finds each imported prediction and updates it in place."""
    from backend.domain.versions import LIVE
    from backend.storage.layout import ProjectDir
    from backend.storage.prediction_ids import PredictionIds
    from backend.studio.task_predictions import TaskPredictions
    from backend.studio.writeback import WritePlan, go_live, write_rest

    project = sdk.projects.create(title="e2e imported head", label_config=LABEL_CONFIG).id
    rows = [{"text": f"segment {n}"} for n in range(130)]
    tasks = list(sdk.projects.import_tasks(project, request=rows, return_task_ids=True).task_ids)
    target = TaskPredictions(
        StudioClient(studio.url, studio.token),
        project,
        PredictionIds(ProjectDir(tmp_path, "1")),
        by_import=True,
    )

    def version(name: str, head: list[int]) -> None:
        ranked = [
            {"task": task, "model_version": name, "score": place / len(head), "result": _choices(["B"])}
            for place, task in enumerate(head)
        ]
        assert (
            write_rest(target, go_live(target, name, ranked, 3), WritePlan(first=3, head=len(head))) is True
        )

    def ours() -> dict[int, list[int]]:
        held: dict[int, list[int]] = {}
        for prediction in sdk.predictions.list(project=project):
            assert prediction.model_version == LIVE
            held.setdefault(prediction.task, []).append(prediction.id)
        return held

    version("v1-20260101000000", tasks[:120])
    first = ours()
    assert sorted(first) == sorted(tasks[:120]) and all(len(ids) == 1 for ids in first.values())
    next_task = http.get(f"/api/projects/{project}/next").json()["id"]
    assert next_task == tasks[0], "the most informative first"
    version("v2-20260101000001", tasks[10:130])
    second = ours()
    assert all(second[task] == first[task] for task in tasks[10:120]), "imported ones updated in place"
    assert all(len(second[task]) == 1 for task in tasks[120:130])
