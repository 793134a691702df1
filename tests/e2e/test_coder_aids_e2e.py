"""What coders see beyond the codes, end to end: a real Label Studio 1.23.2 (SQLite) and the backend
under gunicorn, with the study's evidence form (interview_coding_evidence.xml, which has hints)
and COLD_START=codebook.

Before the first round the codebook orders the queue, and `/next` serves its first task; after it,
the queue head's predictions carry evidence regions, and a coder who deletes one submits fine.
The plain form's story (test_backend_e2e.py) checks that a form without the tag gets no regions.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import httpx
import pytest

from backend.devtools.local_studio import free_port
from backend.domain.versions import LIVE
from backend.resources import label_config
from backend.storage.layout import ProjectDir
from backend.storage.prediction_ids import PredictionIds
from tests.e2e.conftest import backend_env
from tests.e2e.test_backend_e2e import AUTH, ROUND_TIMEOUT, Backend
from tests.helpers import FIXTURES, connect_backend, study_form_result, wait_for


class Project:
    """One project's life with the evidence form; each step runs the steps before it first."""

    def __init__(self, sdk, ls, backend: Backend, project: int, codes: dict[int, list[str]]):
        self.sdk, self.ls, self.backend, self.project, self.codes = sdk, ls, backend, project, codes

    def metrics(self) -> dict:
        return self.backend.metrics(self.project)

    def next_task(self) -> dict:
        headers = {"Authorization": f"Token {self.ls.token}"}
        served = httpx.get(f"{self.ls.url}/api/projects/{self.project}/next", headers=headers, timeout=30)
        served.raise_for_status()
        return served.json()

    def predictions(self, version: str) -> dict[int, dict]:
        """Task id → its served prediction `version` wrote, straight from Label Studio (the writer
        from the backend's live set: Label Studio holds every served prediction under `LIVE`)."""
        found = {}
        live = PredictionIds(ProjectDir(Path(self.backend.env["MODEL_DIR"]), str(self.project))).live()
        for task in self.sdk.tasks.list(project=self.project, page_size=200, fields="all"):
            for prediction in task.predictions or []:
                prediction = prediction if isinstance(prediction, dict) else prediction.model_dump()
                if prediction["model_version"] == LIVE and live.get(task.id) == version:
                    found[task.id] = prediction
        return found

    def texts(self) -> dict[int, str]:
        return {t.id: t.data["text"] for t in self.sdk.tasks.list(project=self.project, page_size=200)}

    @cached_property
    def codebook(self) -> dict:
        """Connected: the pool is encoded and the codebook's queue is live; what `/next` served."""
        assert connect_backend(self.ls, self.project, self.backend.url, AUTH)
        start = wait_for(lambda: self.metrics().get("codebook_start"), 180, "the codebook's queue")
        version = start["version"]
        wait_for(lambda: len(self.predictions(version)) == start["tasks"], 60, "all codebook predictions")
        return {
            "start": start,
            "project": self.sdk.projects.get(id=self.project),
            "predictions": self.predictions(version),
            "next": self.next_task(),
        }

    @cached_property
    def first_version(self) -> dict:
        """Eight annotations (the codebook's first tasks) train the first version."""
        ranked = sorted(self.codebook["predictions"].items(), key=lambda item: item[1]["score"])
        for task_id, _ in ranked[:8]:
            self.sdk.annotations.create(id=task_id, result=study_form_result(self.codes[task_id]))
        metrics = wait_for(
            lambda: (m := self.metrics()).get("current_version") and m["state"] == "idle" and m,
            ROUND_TIMEOUT,
            "the first model version",
        )
        return {"metrics": metrics, "predictions": self.predictions(metrics["current_version"])}

    @cached_property
    def edited_submit(self) -> dict:
        """The coder takes the next task, deletes one evidence region of its prediction and submits."""
        version = self.first_version["metrics"]["current_version"]
        with_regions = [
            (task_id, p) for task_id, p in self.first_version["predictions"].items() if regions(p["result"])
        ]
        task_id, prediction = with_regions[0]
        kept = [item for item in prediction["result"] if item is not regions(prediction["result"])[0]]
        annotation = self.sdk.annotations.create(id=task_id, result=kept)
        metrics = wait_for(
            lambda: (
                (m := self.metrics()).get("current_version") not in (None, version)
                and m["state"] == "idle"
                and m
            ),
            ROUND_TIMEOUT,
            "a round with the edited annotation",
        )
        stored = self.sdk.annotations.get(id=annotation.id)
        return {"sent": kept, "stored": stored.result, "metrics": metrics, "deleted_from": prediction}


def regions(result: list[dict]) -> list[dict]:
    return [item for item in result if item["type"] == "labels"]


@pytest.fixture(scope="module")
def project(label_studio, model_path, tmp_path_factory):
    if label_studio.database != "sqlite":
        pytest.skip("told once, on SQLite's Label Studio")
    from label_studio_sdk.client import LabelStudio

    sdk = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
    workdir = tmp_path_factory.mktemp("coder-aids")
    aids = {
        "MIN_ANNOTATIONS_TO_TRAIN": "8",
        "COLD_START": "codebook",
        "EVIDENCE_TASKS": "5",
        "FAST_LOOP": "true",
        # Evidence needs suggested codes. On these 30 made-up segments a head trained on 8 with
        # TF-IDF beside the embeddings (the default) decides 12 of 110 codes (its highest probability
        # per code 0.43-0.57), and the five tasks that get evidence got no span: the embeddings alone
        # suggest enough to mark. The TF-IDF head's evidence: tests/worker/test_coder_aids.py.
        "FEATURES": "embeddings",
    }
    env = backend_env(label_studio, model_path, workdir, AUTH, **aids)
    backend = Backend(free_port(), env, AUTH, workers=2, log_path=workdir / "backend.log", cwd=workdir)
    backend.start()
    segments = [json.loads(line) for line in (FIXTURES / "segments.jsonl").read_text().splitlines()][:30]
    created = sdk.projects.create(
        title="e2e evidence", label_config=label_config("interview_coding_evidence")
    )
    sdk.projects.import_tasks(
        id=created.id, request=[{"text": s["text"], "question": "How are you?"} for s in segments]
    )
    tasks = sorted(sdk.tasks.list(project=created.id, page_size=100), key=lambda t: t.id)
    codes = {task.id: segment["codes"] for task, segment in zip(tasks, segments, strict=True)}
    yield Project(sdk, label_studio, backend, created.id, codes)
    backend.stop()
    print(backend.log_path.read_text()[-5000:])


def test_before_the_first_round_next_serves_the_codebooks_first_task(project):
    seen = project.codebook
    version = seen["start"]["version"]
    assert version.startswith("v0-codebook-") and seen["project"].model_version == LIVE
    ranked = sorted(seen["predictions"].items(), key=lambda item: item[1]["score"])
    assert seen["next"]["id"] == ranked[0][0], "Label Studio serves the codebook's first task"
    assert seen["start"]["tasks"] == 30 and len(seen["predictions"]) == 30
    first_codes = {code for task_id, _ in ranked[:10] for code in project.codes[task_id]}
    assert "mental_health" in first_codes and "daily_functioning" in first_codes, "codes reached early"


def test_the_queue_heads_predictions_mark_evidence_inside_the_segment_with_a_suggested_code(project):
    predictions = project.first_version["predictions"]
    texts = project.texts()
    marked = {task_id: p for task_id, p in predictions.items() if regions(p["result"])}
    assert marked, "the queue head carries evidence"
    for task_id, prediction in marked.items():
        chosen = {
            c for item in prediction["result"] if item["type"] == "choices" for c in item["value"]["choices"]
        }
        for region in regions(prediction["result"]):
            value = region["value"]
            assert texts[task_id][value["start"] : value["end"]] == value["text"] and value["text"].strip()
            assert value["labels"][0] in chosen and region["from_name"] == "evidence"
    assert len(marked) <= 5, "EVIDENCE_TASKS: the queue head only"


def test_a_coder_who_deletes_an_evidence_span_submits_and_the_next_round_learns_the_codes(project):
    seen = project.edited_submit
    assert len(regions(seen["stored"])) == len(regions(seen["deleted_from"]["result"])) - 1
    assert [r["value"] for r in seen["stored"] if r["type"] == "choices"] == [
        r["value"] for r in seen["sent"] if r["type"] == "choices"
    ]
    assert seen["metrics"]["labeled"] == 9 and seen["metrics"]["last_error"] is None
