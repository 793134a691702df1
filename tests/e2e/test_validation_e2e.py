"""A blind validation sample against a real Label Studio 1.23.2 (SQLite) and the backend under
gunicorn: `coding-backend validate` draws it, the next version serves it without a suggestion at
every K-th place of the queue, its codes stay out of training, and /metrics and /status show the
estimates on it with their intervals; `autocode` refuses a code below target and accepts it at
targets its lower bounds reach, keeping the serving version's decisions with their provenance and
never training on them; a newer version re-decides the code or, missing the targets, suspends it
(shown on /status, /metrics and `autocode --status`), and `--undo` takes it back. With
`SCREENSHOTS` set, the status page's estimates are photographed there (validation.png: the
README's figure) in Chromium, as tests/e2e/test_browser.py does.

The project is tests/fixtures/autocode_segments.jsonl: every other segment is one sentence pattern
that always has `physical_health`, so the test model decides that code right after 8 coded, and the
seeded sample holds 4 of its segments. 4 of 4 right with no false positive gives precision and
recall a Wilson lower bound of 4 / (4 + 1.96²) = 0.51: accepted at targets 0.5, refused at the
defaults 0.9 / 0.8."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from markupsafe import escape

from backend.devtools.local_studio import free_port
from backend.devtools.processes import BackendProcess
from backend.domain.versions import LIVE
from backend.resources import label_config
from backend.storage.layout import ProjectDir
from backend.storage.prediction_ids import PredictionIds
from tests.e2e.conftest import backend_env
from tests.helpers import FIXTURES, connect_backend, study_form_result, wait_for

AUTH = ("lead", "backend-pass")
ROUND_TIMEOUT = 240
EVERY = 3
SIZE, SEED = 5, 5  # this draw of 5 of the 22 uncoded segments holds 4 with CODE
CODE, TARGET = "physical_health", 0.5


def photograph_estimates(url: str, path: Path) -> None:
    """The status page's section on the validation sample, as Chromium shows it, cropped to it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    from backend.studio.client import basic_auth_header
    from tests.e2e.test_browser import CHROMEDRIVER, CHROMIUM, missing_browser

    assert missing_browser() is None, f"SCREENSHOTS is set: {missing_browser()}"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--disable-background-networking")  # the closed network refuses its calls
    options.add_argument("--window-size=1000,2000")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.setExtraHTTPHeaders", {"headers": {"Authorization": basic_auth_header(*AUTH)}}
        )
        driver.get(url)
        section = wait_for(lambda: driver.find_elements(By.ID, "on-validation"), 30, "the estimates")[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        section.screenshot(str(path))
    finally:
        driver.quit()


def autocode_cli(env: dict, project: int, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "backend.cli", "autocode", "--project", str(project), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


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
        lines = (FIXTURES / "autocode_segments.jsonl").read_text().splitlines()
        segments = [json.loads(line) for line in lines]
        project = sdk.projects.create(title="e2e validation", label_config=label_config("interview_coding"))
        sdk.projects.import_tasks(
            id=project.id, request=[{"text": s["text"], "question": "How are you?"} for s in segments]
        )
        tasks = sorted(sdk.tasks.list(project=project.id, page_size=100), key=lambda t: t.id)
        codes = {task.id: segment["codes"] for task, segment in zip(tasks, segments, strict=False)}
        assert connect_backend(label_studio, project.id, backend.url, AUTH), (
            "the webhook never got basic auth"
        )
        metrics = lambda: backend.metrics().get(str(project.id), {})  # noqa: E731

        def settled(version_not=None):
            """Both lanes idle with nothing pending, and the body fine-tuned once: its round ends in a
            new version, which would otherwise land after the estimates below (as on a slow CI)."""
            found = metrics()
            current = found.get("current_version")
            lanes_idle = found["state"] == "idle" and found["body_state"] == "idle" and found["body_version"]
            done = current and current != version_not and lanes_idle and not found["pending"]
            return found if done else None

        wait_for(lambda: metrics().get("pool_encoded"), 180, "the pool encoded")
        for task in tasks[:8]:
            sdk.annotations.create(id=task.id, result=study_form_result(codes[task.id]))
        first = wait_for(settled, ROUND_TIMEOUT, "the first version")["current_version"]

        command = [sys.executable, "-m", "backend.cli", "validate", "--project", str(project.id)]
        command += ["--size", str(SIZE), "--seed", str(SEED), "--every", str(EVERY)]
        drawn = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert drawn.returncode == 0, drawn.stderr
        sample = json.loads((tmp_path / "models" / str(project.id) / "validation.json").read_text())[
            "task_ids"
        ]
        assert len(sample) == SIZE and not set(sample) & {task.id for task in tasks[:8]}
        positives = sum(CODE in codes[task_id] for task_id in sample)
        assert positives == 4, (
            f"the draw (seed {SEED}) holds {positives} {CODE} segments, not the 4 whose Wilson lower bound "
            f"(0.51, all decided right) reaches the target {TARGET}: change SEED or the fixture"
        )
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
        queue = sorted((p for p in current if p["model_version"] == LIVE), key=lambda p: p["score"])
        assert len(queue) == 22, "every uncoded task has a current prediction, the sample's too"
        live = PredictionIds(ProjectDir(Path(env["MODEL_DIR"]), str(project.id))).live()
        assert {live.get(p["task"]) for p in queue} == {version}, "each written by the version serving now"
        places = [n for n, p in enumerate(queue, start=1) if p["task"] in sample]
        assert places == [EVERY * n for n in range(1, SIZE + 1)]
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
            return found if estimates.get("coded") == SIZE and settled() else None

        coded = wait_for(estimated, ROUND_TIMEOUT, "estimates on the coded sample")
        assert coded["labeled"] == 8, "the sample's codes are held out of training"
        estimates = coded["validation"]["estimates"]
        assert estimates["held_out"] and estimates["of_serving_version"]
        for figures in estimates["codes"].values():
            assert figures["f1"]["n"] == SIZE and set(figures["prevalence"]) == {"ppi", "classical"}
            for figure in (figures["precision"], figures["recall"], figures["prevalence"]["classical"]):
                assert figure["estimate"] is None or figure["low"] <= figure["estimate"] <= figure["high"]
        page = httpx.get(f"{backend.url}/status/{project.id}", auth=AUTH, timeout=30).text
        assert '<table id="validation">' in page and "Held out of training" in page
        assert '<figure id="plot-validation"><svg' in page

        if os.environ.get("SCREENSHOTS"):
            shot = Path(os.environ["SCREENSHOTS"]) / "validation.png"
            photograph_estimates(f"{backend.url}/status/{project.id}", shot)

        measured = estimates["codes"][CODE]
        refused = autocode_cli(env, project.id, "--codes", CODE)  # the defaults: 0.9 and 0.8
        assert refused.returncode == 3, refused.stderr
        assert f"{CODE}: refused: " in refused.stderr and "is below 0.90" in refused.stderr  # names it
        assert metrics()["autocoded"] == {}

        targets = ("--min-precision", str(TARGET), "--min-recall", str(TARGET))
        accepted = autocode_cli(env, project.id, "--codes", CODE, *targets)
        assert accepted.returncode == 0, f"{accepted.stderr}(the estimate on the sample: {measured})"
        assert f"{CODE}: handed over to the model" in accepted.stdout
        kept = metrics()["autocoded"][CODE]
        assert kept["version"] == kept["handed_version"] == coded["current_version"]
        assert (kept["min_precision"], kept["min_recall"]) == (TARGET, TARGET)
        assert kept["segments"] == 17 and kept["redecided"] is None, "every segment no coder has coded"
        autocoded = tmp_path / "models" / str(project.id) / "autocoded.json"
        provenance = json.loads(autocoded.read_text())["codes"][CODE]
        assert provenance["estimate"] == measured, "the estimate the hand-over rests on"
        uncoded, probabilities = provenance["task_ids"], provenance["probabilities"]
        assert len(provenance["decisions"]) == len(probabilities) == 17, "a decision and its probability"
        assert all(0 <= p <= 1 for p in probabilities)
        assert not set(uncoded) & ({task.id for task in tasks[:8]} | set(sample))

        for task_id in uncoded[:2]:
            sdk.annotations.create(id=task_id, result=study_form_result(codes[task_id]))

        def redecided():
            found = settled(version_not=kept["version"]) or {}
            handed = (found.get("autocoded") or {}).get(CODE) or {}
            return found if handed.get("coded_since") == 2 else None

        later = wait_for(redecided, ROUND_TIMEOUT, "a newer version's re-decision")
        handed, version = later["autocoded"][CODE], later["current_version"]
        assert later["labeled"] == 10, "trained on the 2 segments coders coded, never on the model's codes"
        assert handed["redecided"]["version"] == version and handed["segments"] == 15
        figures = later["validation"]["estimates"]["codes"][CODE]
        assert later["validation"]["estimates"]["version"] == version, "measured anew for the new version"
        meets = all(
            figures[name]["low"] is not None and figures[name]["low"] >= TARGET
            for name in ("precision", "recall")
        )
        assert handed["redecided"]["held"] is not meets and (handed["suspended"] is None) is meets
        summary = handed["redecided"]["summary"]
        assert summary.startswith(f"{'re-decided' if meets else 'not re-decided'} at version {version}")
        page = httpx.get(f"{backend.url}/status/{project.id}", auth=AUTH, timeout=30).text
        assert '<table id="autocoded">' in page and str(escape(summary)) in page
        shown = autocode_cli(env, project.id, "--status")
        assert shown.returncode == 0 and f"  {summary}" in shown.stdout.splitlines(), shown.stdout

        undone = autocode_cli(env, project.id, "--codes", CODE, "--undo")
        assert undone.returncode == 0, undone.stderr
        assert metrics()["autocoded"] == {} and json.loads(autocoded.read_text())["codes"] == {}
        page = httpx.get(f"{backend.url}/status/{project.id}", auth=AUTH, timeout=30).text
        assert "No code is handed over to the model" in page

        released = subprocess.run(
            [sys.executable, "-m", "backend.cli", "validate", "--project", str(project.id), "--release"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert released.returncode == 0, released.stderr

        def retrained():
            found = settled(version_not=version)
            estimates = ((found or {}).get("validation") or {}).get("estimates") or {}
            return found if estimates.get("held_out") is False else None

        after = wait_for(retrained, ROUND_TIMEOUT, "a round that trains on the released sample")
        assert after["labeled"] == 15 and after["validation"]["estimates"]["coded"] == SIZE
    finally:
        backend.stop()
        print(backend.log_path.read_text()[-5000:])
