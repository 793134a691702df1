"""`coding-backend demo` sets up a working project against a real Label Studio."""

import os
import sqlite3
import subprocess
import sys

from tests.helpers import REPO


def test_demo_sets_up_label_studio_backend_and_project(model_path, tmp_path, seed_studio_dir):
    """Run twice on one kept data folder, whose Label Studio database comes migrated
    (tests/conftest.py: Label Studio's own first-start migrations cost 40 s and are its business)."""
    seed_studio_dir(tmp_path / "label-studio")
    env = {
        **os.environ,
        "MODEL_NAME": model_path,
        "HF_HUB_OFFLINE": "1",
        "LABEL_STUDIO_VENV": os.environ.get("LABEL_STUDIO_VENV", str(REPO / ".ls-venv")),
    }
    command = [sys.executable, "-m", "backend.cli", "demo", "--exit-after-setup", "--data-dir", str(tmp_path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Label Studio: http://127.0.0.1:" in out and "login: admin@example.com / " in out
    assert ": 30 segments, backend http://127.0.0.1:" in out and "(connected)" in out
    assert "webhook does not carry basic auth yet" not in out
    assert "stopping the backend and Label Studio" in out
    assert "API token (LABEL_STUDIO_API_KEY, for scripts): " in out
    database = tmp_path / "label-studio" / "label_studio.sqlite3"
    assert database.exists()

    evidence = subprocess.run([*command, "--evidence"], env=env, capture_output=True, text=True, timeout=600)
    assert evidence.returncode == 0, evidence.stdout[-2000:] + evidence.stderr[-3000:]
    assert "evidence: the queue head's suggestions highlight" in evidence.stdout
    with sqlite3.connect(database) as connection:
        forms = dict(connection.execute("SELECT title, label_config FROM project"))
    assert "<Labels" not in forms["Interview coding (demo)"], "the kept demo project keeps its form"
    assert "<Labels" in forms["Interview coding (demo, evidence)"]
