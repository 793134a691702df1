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
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from backend.devtools.local_studio import LocalLabelStudio, default_venv_dir, ensure_label_studio, free_port
from backend.research.corpus import read_segments
from backend.resources import label_config
from backend.server.auth import basic_auth_header

log = logging.getLogger(__name__)
BACKEND_STATES = {
    "CO": "connected",
    "DI": "disconnected",
    "ER": "error",
    "TR": "training",
    "PR": "predicting",
}


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
    backend = sdk.ml.create(
        project=project.id,
        url=backend_url,
        title="coding-backend",
        auth_method="BASIC_AUTH",
        basic_auth_user=auth[0],
        basic_auth_pass=auth[1],
    )
    state = BACKEND_STATES.get(str(backend.state), str(backend.state))
    return DemoProject(project.id, len(tasks), state, _webhook_authorized(sdk, project.id, auth))


def _webhook_authorized(sdk, project: int, auth: tuple[str, str], timeout: float = 60) -> bool:
    """Wait until the backend has added its basic auth to the project's webhook."""
    header = basic_auth_header(*auth)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hooks = sdk.webhooks.list(project=str(project))
        if any((hook.headers or {}).get("Authorization") == header for hook in hooks):
            return True
        time.sleep(1)
    return False


class BackendProcess:
    """`coding-backend serve` as a child process group."""

    def __init__(self, port: int, env: dict[str, str], auth: tuple[str, str]):
        self.url = f"http://127.0.0.1:{port}"
        self.auth = auth
        command = [sys.executable, "-m", "backend.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        self.process = subprocess.Popen(command, env=env, start_new_session=True)

    def wait_until_up(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the backend exited during start-up (see its log above)")
            try:
                if httpx.get(f"{self.url}/health", auth=self.auth, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the backend did not answer /health within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


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
            backend.wait_until_up()
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
