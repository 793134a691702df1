"""The package as a user installs it: a wheel, `pip install`ed (non-editable) into a fresh virtualenv
and run from outside the checkout, as in the Docker image. `demo`, `simulate` and `serve` work, and
the label configs and demo segments come from inside the package.

The fresh virtualenv sees this one's dependencies through a .pth file (installing torch and the rest
again would take minutes and gigabytes); the package itself, its resources and its entry point are
the wheel's.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile

import httpx
import pytest

from backend.devtools.local_studio import free_port
from tests.helpers import FIXTURES, REPO, wait_for

RESOURCES = (  # the label configs come from the checkout's label_config/
    "backend/resources/label_configs/interview_coding.xml",
    "backend/resources/label_configs/interview_coding_evidence.xml",
    "backend/resources/label_configs/generic_multilabel.xml",
    "backend/resources/demo/segments.jsonl",
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """A wheel of the checkout, installed into a fresh venv; where it is and how to run it."""
    root = tmp_path_factory.mktemp("installed")
    source, wheels = root / "source", root / "wheels"  # a copy: building in the checkout leaves build/ there
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, source)
    for folder in ("backend", "label_config"):  # label_config/: the wheel's backend.resources.label_configs
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(source)],
        check=True,
        cwd=root,
        timeout=600,
    )
    [wheel] = wheels.glob("label_studio_coding_backend-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    [venv_site] = (venv / "lib").glob("python3.*/site-packages")
    (venv_site / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], check=True, timeout=300
    )
    work = root / "elsewhere"  # not the checkout: nothing may be found relative to it
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"HF_HUB_OFFLINE": "1", "LOG_LEVEL": "WARNING", "MODEL_DIR": str(work / "models")}
    return {"wheel": wheel, "python": python, "bin": venv / "bin", "cwd": work, "env": env}


def run(installed: dict, *args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    command = [str(installed["bin"] / "coding-backend"), *args]
    return subprocess.run(
        command,
        cwd=installed["cwd"],
        env={**installed["env"], **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_wheel_carries_the_resources_and_the_venv_runs_its_own_copy(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    assert set(RESOURCES) <= set(names)
    where = subprocess.run(
        [str(installed["python"]), "-c", "import backend; print(backend.__file__)"],
        cwd=installed["cwd"],
        env=installed["env"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(installed["bin"].parent)), where.stdout
    assert not where.stdout.startswith(str(REPO / "backend"))


def test_demo_sets_up_a_project_from_the_installed_package(installed, model_path, tmp_path, seed_studio_dir):
    seed_studio_dir(tmp_path / "label-studio")  # Label Studio's database, migrated (tests/conftest.py)
    venv = os.environ.get("LABEL_STUDIO_VENV", str(REPO / ".ls-venv"))
    result = run(
        installed,
        "demo",
        "--exit-after-setup",
        "--data-dir",
        str(tmp_path),
        MODEL_NAME=model_path,
        LABEL_STUDIO_VENV=venv,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert ": 30 segments, backend http://127.0.0.1:" in result.stdout and "(connected)" in result.stdout


def test_simulate_runs_from_the_installed_package(installed, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("- {name: tfidf-cviar, kind: tfidf, query_strategy: cviar}\n")
    protocol = ["--initial", "8", "--batch", "4", "--rounds", "1", "--seeds", "1"]
    files = ["--data", str(FIXTURES / "segments.jsonl"), "--grid", str(grid), "--out", str(tmp_path / "out")]
    result = run(
        installed, "simulate", *protocol, *files, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "out" / "results.csv").read_text().count("tfidf-cviar") == 2


def test_serve_answers_from_the_installed_package(installed):
    port = free_port()
    env = {**installed["env"], "PORT": str(port), "BASIC_AUTH_USER": "u", "BASIC_AUTH_PASS": "p"}
    server = subprocess.Popen(
        [str(installed["bin"] / "coding-backend"), "serve", "--host", "127.0.0.1"],
        cwd=installed["cwd"],
        env=env,
    )

    def healthy():
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", auth=("u", "p"), timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        assert wait_for(healthy, 60, "the installed backend to answer /health")
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 401
    finally:
        server.terminate()
        server.wait(30)
