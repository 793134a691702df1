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
from pathlib import Path

from backend.devtools.local_studio import LocalLabelStudio, default_venv_dir, ensure_label_studio, free_port
from backend.devtools.processes import BackendProcess
from backend.research.corpus import read_segments
from backend.resources import label_config
from backend.studio.client import StudioClient
from backend.studio.setup import ProjectSetter, segment_tasks

log = logging.getLogger(__name__)
DEMO_TITLE = "Interview coding (demo)"
EVIDENCE_TITLE = "Interview coding (demo, evidence)"  # its own project: a kept demo's form is never changed


def read_demo_segments(path: Path, limit: int | None) -> list[dict]:
    """The first `limit` segments of a file, as Label Studio task data."""
    segments = read_segments(path, require_codes=False)
    return segment_tasks(segments[:limit] if limit else segments)


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
    evidence: bool = False,
) -> int:
    """Run the whole demo; returns the exit status. Without `data_dir` nothing is kept."""
    tasks = read_demo_segments(data, limit)
    executable = ensure_label_studio(venv or default_venv_dir())
    auth = ("demo", secrets.token_urlsafe(12))
    scratch = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="coding-demo-"))
    studio_dir = scratch / "label-studio" if data_dir else None
    with LocalLabelStudio(executable, port=port, data_dir=studio_dir) as studio:
        env = {**os.environ, "LABEL_STUDIO_URL": studio.url, "LABEL_STUDIO_API_KEY": studio.token}
        env |= {"BASIC_AUTH_USER": auth[0], "BASIC_AUTH_PASS": auth[1], "MODEL_DIR": str(scratch / "models")}
        env |= {"WRITE_BY_IMPORT": "true"}  # this Label Studio imports quickly (local_studio.IMPORT_FLAG)
        backend = BackendProcess(backend_port or free_port(), env, auth)
        try:
            backend.start()
            setter = ProjectSetter(StudioClient(studio.url, studio.token))
            form, title = (
                ("interview_coding_evidence", EVIDENCE_TITLE)
                if evidence
                else ("interview_coding", DEMO_TITLE)
            )
            setup = setter.set_up(title, label_config(form), tasks, backend.url, auth)
            print(f"\nLabel Studio: {studio.url}/projects/{setup.project}/data")
            print(f"  login: {studio.username} / {studio.password}")
            print(f"  API token (LABEL_STUDIO_API_KEY, for scripts): {studio.token}")
            connected = f"backend {backend.url} ({setup.connection.state})"
            print(f"  project {setup.project}: {len(tasks)} segments, {connected}")
            print(f"Status page: {backend.url}/status  (login: {auth[0]} / {auth[1]})")
            if not setup.connection.webhook_authorized:
                print(
                    "  warning: the project's webhook does not carry basic auth yet: annotations won't train"
                )
            if evidence:
                print("  evidence: the queue head's suggestions highlight the words they rest on")
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
