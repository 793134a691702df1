"""`coding-backend demo`: Label Studio, the backend and a coding project on one machine, no Docker.

Starts a local Label Studio from its own virtualenv (created on first use), starts the backend
with basic auth, creates a project with the study's coding form, imports segments, connects the
backend (its webhook carries the basic auth), prints the URL and login, and stops everything it
started on Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from backend.devtools.local_studio import LocalLabelStudio, default_venv_dir, ensure_label_studio, free_port
from backend.devtools.processes import BackendProcess, connect_backend
from backend.research.corpus import read_segments
from backend.resources import label_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoProject:
    id: int
    tasks: int
    backend_state: str
    webhook_authorized: bool


def read_demo_segments(path: Path, limit: int | None) -> list[dict]:
    """Segments as Label Studio task data: the text and, when there, the interview question."""
    segments = read_segments(path, require_codes=False)
    rows = segments[:limit] if limit else segments
    return [
        {"text": row["text"], "question": row.get("question", ""), "segment_id": row["id"]} for row in rows
    ]


def set_up_project(
    sdk, backend_url: str, auth: tuple[str, str], tasks: list[dict], config: str
) -> DemoProject:
    """Create the project, import the segments and connect the backend with basic auth."""
    project = sdk.projects.create(title="Interview coding (demo)", label_config=config)
    for start in range(0, len(tasks), 2000):
        sdk.projects.import_tasks(id=project.id, request=tasks[start : start + 2000])
    state, authorized = connect_backend(sdk, project.id, backend_url, auth)
    return DemoProject(project.id, len(tasks), state, authorized)


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt


def run_demo(
    data: Path,
    *,
    limit: int | None,
    port: int | None,
    backend_port: int | None,
    data_dir: Path | None,
    venv: Path | None,
    exit_after_setup: bool,
) -> int:
    """Run the whole demo; returns the exit status. Without `data_dir` nothing is kept."""
    from label_studio_sdk.client import LabelStudio

    tasks = read_demo_segments(data, limit)
    executable = ensure_label_studio(venv or default_venv_dir())
    auth = ("demo", secrets.token_urlsafe(12))
    scratch = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="coding-demo-"))
    studio_dir = scratch / "label-studio" if data_dir else None
    with LocalLabelStudio(executable, port=port, data_dir=studio_dir) as studio:
        env = {**os.environ, "LABEL_STUDIO_URL": studio.url, "LABEL_STUDIO_API_KEY": studio.token}
        env |= {"BASIC_AUTH_USER": auth[0], "BASIC_AUTH_PASS": auth[1], "MODEL_DIR": str(scratch / "models")}
        backend = BackendProcess(backend_port or free_port(), env, auth)
        try:
            backend.start()
            sdk = LabelStudio(base_url=studio.url, api_key=studio.token)
            project = set_up_project(sdk, backend.url, auth, tasks, label_config())
            print(f"\nLabel Studio: {studio.url}/projects/{project.id}/data")
            print(f"  login: {studio.username} / {studio.password}")
            connected = f"backend {backend.url} ({project.backend_state})"
            print(f"  project {project.id}: {project.tasks} segments, {connected}")
            if not project.webhook_authorized:
                print(
                    "  warning: the project's webhook does not carry basic auth yet: annotations won't train"
                )
            print("Code segments with 'Label All Tasks'; after a few annotations the backend pre-annotates")
            print("the rest and serves the most informative segment next. Ctrl-C stops everything.")
            if not exit_after_setup:
                signal.signal(signal.SIGTERM, _interrupt)
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            print("stopping the backend and Label Studio ...")
            backend.stop()
    if not data_dir:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0
