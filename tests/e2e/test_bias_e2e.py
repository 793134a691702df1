"""Automation bias against a real Label Studio 1.23.2 (SQLite) and the backend under gunicorn: a coder
starts two served tasks from their suggestions, keeps one unchanged and changes the other, and the
report (the round's `/metrics`, `coding-backend bias`) finds the suggestions they saw in the
backend's log of its writes, judges both, and counts the annotations made without a suggestion."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from backend.devtools.local_studio import free_port
from backend.devtools.processes import BackendProcess
from backend.domain.scheme import parse_label_config
from backend.domain.versions import LIVE
from backend.resources import label_config
from tests.e2e.conftest import backend_env
from tests.helpers import FIXTURES, connect_backend, study_form_result, wait_for

AUTH = ("lead", "backend-pass")
ROUND_TIMEOUT = 240
# seconds the editor was open, as Label Studio's editor reports it: long enough that a round set off by
# the first of the two annotations rewrites the second's prediction well after its coder started
LEAD_TIME = 5.0


def test_a_kept_and_a_changed_suggestion_are_judged_against_what_the_coder_was_shown(
    label_studio, model_path, tmp_path
):
    from label_studio_sdk.client import LabelStudio

    if label_studio.database != "sqlite":
        pytest.skip("told once, on SQLite")
    sdk = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
    env = backend_env(label_studio, model_path, tmp_path, AUTH, MIN_ANNOTATIONS_TO_TRAIN="8")
    backend = BackendProcess(
        free_port(), env, AUTH, workers=2, log_path=tmp_path / "backend.log", cwd=tmp_path
    )
    backend.start()
    try:
        config = label_config("interview_coding")
        scheme = parse_label_config(config)
        segments = [json.loads(line) for line in (FIXTURES / "segments.jsonl").read_text().splitlines()]
        project = sdk.projects.create(title="e2e bias", label_config=config)
        sdk.projects.import_tasks(
            id=project.id, request=[{"text": s["text"], "question": "How are you?"} for s in segments[:20]]
        )
        tasks = sorted(sdk.tasks.list(project=project.id, page_size=100), key=lambda t: t.id)
        assert connect_backend(label_studio, project.id, backend.url, AUTH), (
            "the webhook never got basic auth"
        )
        metrics = lambda: backend.metrics().get(str(project.id), {})  # noqa: E731

        def settled(labeled: int):
            found = metrics()
            done = found.get("current_version") and found["state"] == "idle" and not found["pending"]
            return found if done and found["labeled"] == labeled and found["predictions_complete"] else None

        wait_for(lambda: metrics().get("pool_encoded"), 180, "the pool encoded")
        for task, segment in zip(tasks[:8], segments, strict=False):
            sdk.annotations.create(id=task.id, result=study_form_result(segment["codes"]))
        version = wait_for(lambda: settled(8), ROUND_TIMEOUT, "the first version")["current_version"]

        served = sorted(
            (p for t in tasks[8:] for p in sdk.predictions.list(task=t.id) if p.model_version == LIVE),
            key=lambda p: p.score,
        )[:2]  # the queue's first two places, as a coder is served them
        log = tmp_path / "models" / str(project.id) / "suggestions.json"

        def written_a_while_ago():
            writes = json.loads(log.read_text())["writes"]
            last = max(datetime.fromisoformat(writes[str(p.task)][-1]["at"]) for p in served)
            return (datetime.now(UTC) - last).total_seconds() > LEAD_TIME + 3  # clear of the log's slack

        wait_for(written_a_while_ago, 30, "the suggestions' writes to lie before the coder starts")
        writes = json.loads(log.read_text())["writes"]
        assert {writes[str(p.task)][-1]["version"] for p in served} == {version}, "the internal version"
        kept, changed = served
        suggested = frozenset(scheme.codes_of(changed.result))
        other = ["mental_health"] if "mental_health" not in suggested else ["physical_health"]
        unchanged = [{k: item[k] for k in ("from_name", "to_name", "type", "value")} for item in kept.result]
        for prediction, result in ((kept, unchanged), (changed, study_form_result(other))):
            sdk.annotations.create(
                id=prediction.task, result=result, parent_prediction=prediction.id, lead_time=LEAD_TIME
            )
        stored = sdk.annotations.list(id=kept.task)[0]
        assert stored.parent_prediction == kept.id and stored.lead_time == LEAD_TIME

        def reported():
            found = settled(10)
            bias = (found or {}).get("automation_bias") or {}
            return bias if bias.get("judged") == 2 else None

        bias = wait_for(reported, ROUND_TIMEOUT, "the round's report on the two annotations")
        assert bias["unjudged"] == {"no_suggestion": 8}, "the first eight were made without a suggestion"
        ((name, coder),) = bias["coders"].items()
        assert "@" not in json.dumps(bias) and name.startswith("coder-")
        assert coder["judged"] == 2 and coder["unchanged"]["estimate"] == 0.5 and not coder["flagged"]
        for code in set(other) | suggested:
            figures = bias["codes"][code]
            assert figures["kept"]["n"] == 2 and figures["added"] + figures["removed"] == 1, code

        cli = [sys.executable, "-m", "backend.cli", "bias"]
        table = subprocess.run([*cli, "--project", str(project.id)], env=env, capture_output=True, text=True)
        assert table.returncode == 0, table.stderr
        assert "2 annotation(s) started from a suggestion the backend recorded" in table.stdout
        assert "not judged: no_suggestion 8" in table.stdout
        unknown = subprocess.run([*cli, "--project", "999"], env=env, capture_output=True, text=True)
        assert unknown.returncode == 2 and "project 999: Label Studio has no such project" in unknown.stderr
    finally:
        backend.stop()
        print(backend.log_path.read_text()[-5000:])
