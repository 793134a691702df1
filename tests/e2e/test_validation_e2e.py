"""A blind validation sample against a real Label Studio 1.23.2 (SQLite) and the backend under
gunicorn: `coding-backend validate` draws it, the next version serves it without a suggestion at
every K-th place of the queue, its codes stay out of training, and /metrics and /status show the
estimates on it with their intervals."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import httpx
import pytest

from backend.devtools.local_studio import free_port
from backend.devtools.processes import BackendProcess
from backend.resources import label_config
from tests.e2e.conftest import backend_env
from tests.helpers import FIXTURES, study_form_result, wait_for

AUTH = ("lead", "backend-pass")
ROUND_TIMEOUT = 240
EVERY = 3


def test_a_validation_sample_is_served_blind_interleaved_held_out_and_estimated(
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
        segments = [json.loads(line) for line in (FIXTURES / "segments.jsonl").read_text().splitlines()]
        project = sdk.projects.create(title="e2e validation", label_config=label_config("interview_coding"))
        sdk.projects.import_tasks(
            id=project.id, request=[{"text": s["text"], "question": "How are you?"} for s in segments[:30]]
        )
        tasks = sorted(sdk.tasks.list(project=project.id, page_size=100), key=lambda t: t.id)
        codes = {task.id: segment["codes"] for task, segment in zip(tasks, segments, strict=False)}
        sdk.ml.create(
            project=project.id,
            url=backend.url,
            title="coding-backend",
            auth_method="BASIC_AUTH",
            basic_auth_user=AUTH[0],
            basic_auth_pass=AUTH[1],
        )
        auth = "Basic " + base64.b64encode(f"{AUTH[0]}:{AUTH[1]}".encode()).decode()
        wait_for(
            lambda: any(
                h.url.endswith("/webhook") and (h.headers or {}).get("Authorization") == auth
                for h in sdk.webhooks.list(project=str(project.id))
            ),
            60,
            "the webhook to carry basic auth",
        )
        metrics = lambda: backend.metrics().get(str(project.id), {})  # noqa: E731

        def settled(version_not=None):
            found = metrics()
            current = found.get("current_version")
            done = current and current != version_not and found["state"] == "idle" and not found["pending"]
            return found if done else None

        wait_for(lambda: metrics().get("pool_encoded"), 180, "the pool encoded")
        for task in tasks[:8]:
            sdk.annotations.create(id=task.id, result=study_form_result(codes[task.id]))
        first = wait_for(settled, ROUND_TIMEOUT, "the first version")["current_version"]

        command = [sys.executable, "-m", "backend.cli", "validate", "--project", str(project.id)]
        command += ["--size", "4", "--seed", "3", "--every", str(EVERY)]
        drawn = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert drawn.returncode == 0, drawn.stderr
        sample = json.loads((tmp_path / "models" / str(project.id) / "validation.json").read_text())[
            "task_ids"
        ]
        assert len(sample) == 4 and not set(sample) & {task.id for task in tasks[:8]}
        second = wait_for(
            lambda: (found := settled(version_not=first)) and found["predictions_complete"] and found,
            ROUND_TIMEOUT,
            "the version with the sample, every prediction written",
        )

        version = second["current_version"]
        current = [
            p if isinstance(p, dict) else p.model_dump()
            for task in sdk.tasks.list(project=project.id, page_size=100, fields="all")
            if not task.annotations
            for p in (task.predictions or [])
        ]
        queue = sorted((p for p in current if p["model_version"] == version), key=lambda p: p["score"])
        assert len(queue) == 22, "every uncoded task has a current prediction, the sample's too"
        places = [n for n, p in enumerate(queue, start=1) if p["task"] in sample]
        assert places == [EVERY, 2 * EVERY, 3 * EVERY, 4 * EVERY]
        for prediction in queue:
            chosen = [c for item in prediction["result"] for c in item["value"].get("choices", [])]
            assert (not chosen) == (prediction["task"] in sample), "no suggestion on, and only on, the sample"
        assert all(item["type"] == "choices" for p in queue for item in p["result"])
        headers = {"Authorization": f"Token {label_studio.token}"}
        served = httpx.get(f"{label_studio.url}/api/projects/{project.id}/next", headers=headers, timeout=30)
        assert served.json()["id"] == queue[0]["task"], "Label Studio serves the queue by score"

        for task_id in sample:
            sdk.annotations.create(id=task_id, result=study_form_result(codes[task_id]))

        def estimated():
            found = metrics()
            estimates = ((found.get("validation") or {}).get("estimates")) or {}
            return found if estimates.get("coded") == 4 and settled() else None

        coded = wait_for(estimated, ROUND_TIMEOUT, "estimates on the coded sample")
        assert coded["labeled"] == 8, "the sample's codes are held out of training"
        estimates = coded["validation"]["estimates"]
        assert estimates["held_out"] and estimates["of_serving_version"]
        for figures in estimates["codes"].values():
            assert figures["f1"]["n"] == 4 and set(figures["prevalence"]) == {"ppi", "classical"}
            for figure in (figures["precision"], figures["recall"], figures["prevalence"]["classical"]):
                assert figure["estimate"] is None or figure["low"] <= figure["estimate"] <= figure["high"]
        page = httpx.get(f"{backend.url}/status/{project.id}", auth=AUTH, timeout=30).text
        assert '<table id="validation">' in page and "Held out of training" in page
        assert '<figure id="plot-validation"><svg' in page

        cli = [sys.executable, "-m", "backend.cli"]
        refused = subprocess.run(
            [
                *cli,
                "autocode",
                "--project",
                str(project.id),
                "--codes",
                "physical_health",
                "--min-precision",
                "1",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode == 3, refused.stderr
        assert "physical_health: refused: " in refused.stderr and "1.00" in refused.stderr  # names the target
        assert metrics()["autocoded"] == {}

        released = subprocess.run(
            [*cli, "validate", "--project", str(project.id), "--release"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert released.returncode == 0, released.stderr
        version = coded["current_version"]

        def retrained():
            found = settled(version_not=version)
            estimates = ((found or {}).get("validation") or {}).get("estimates") or {}
            return found if estimates.get("held_out") is False else None

        after = wait_for(retrained, ROUND_TIMEOUT, "a round that trains on the released sample")
        assert after["labeled"] == 12 and after["validation"]["estimates"]["coded"] == 4
    finally:
        backend.stop()
        print(backend.log_path.read_text()[-5000:])
