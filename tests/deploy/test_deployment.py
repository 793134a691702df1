"""Deployment files: they parse with both compose tools, and every variable they set is one the code
reads. These checks catch what a build would not (a misspelt variable is silently ignored at run
time); tests/deploy/test_stack.py builds the images and runs the stack.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from backend.cli import build_parser
from backend.config import all_fields, load_settings
from backend.devtools.local_studio import free_port
from tests.helpers import REPO, wait_for

READ_BY_THE_BACKEND = {name.upper() for name in all_fields()}
READ_BY_LIBRARIES = {
    "PATH",
    "HF_HOME",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "PIP_CERT",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "PIP_NO_CACHE_DIR",
    "PIP_DISABLE_PIP_VERSION_CHECK",
}
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.gpu.yml", "docker/compose.offline.yml")
COMPOSE_TOOLS = {"docker compose": ["docker", "compose"], "docker-compose": ["docker-compose"]}


def compose(name: str) -> dict:
    return yaml.safe_load((REPO / name).read_text())


def env_example() -> dict[str, str]:
    lines = (REPO / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def interpolated(text: str) -> set[str]:
    return set(re.findall(r"\$\{(\w+)", text))


def dockerfile_env() -> set[str]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    return {
        key for line in text.splitlines() if line.startswith("ENV ") for key in re.findall(r"(\w+)=", line)
    }


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_every_variable_compose_gives_the_backend_is_read_by_it(name):
    for service in ("backend", "worker", "init"):
        environment = compose(name)["services"].get(service, {}).get("environment", {})
        assert set(environment) <= READ_BY_THE_BACKEND, set(environment) - READ_BY_THE_BACKEND


@pytest.mark.parametrize("tool", COMPOSE_TOOLS)
def test_compose_config_is_valid_with_both_compose_tools(tool, tmp_path):
    command = COMPOSE_TOOLS[tool]
    try:
        found = subprocess.run([*command, "version"], capture_output=True).returncode == 0
    except OSError:
        found = False
    if not found:
        pytest.skip(f"no `{tool}` here (docker/engine.sh installs both; .ci/run calls it)")
    env_file = tmp_path / ".env"
    secrets = {name: "a-secret-value-123" for name in SECRETS}
    env_file.write_text("".join(f"{k}={secrets.get(k, v)}\n" for k, v in env_example().items()))
    scale = ["--profile", "scale", "-f", "docker-compose.yml"]
    for arguments in (
        ["-f", "docker-compose.yml"],
        ["-f", "docker-compose.yml", "-f", "docker-compose.gpu.yml"],
        scale,
    ):
        result = subprocess.run(
            [*command, "--env-file", str(env_file), *arguments, "config", "-q"], cwd=REPO, capture_output=True
        )
        assert result.returncode == 0, result.stderr.decode()
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = subprocess.run(
        [*command, "--env-file", str(empty), "config", "-q"], cwd=REPO, capture_output=True
    )
    assert result.returncode != 0 and b"in .env" in result.stderr, "it starts without the secrets"


def test_compose_wires_label_studio_and_the_backend_by_service_name():
    services = compose("docker-compose.yml")["services"]
    assert services["label-studio"]["image"] == "${LABEL_STUDIO_IMAGE:-heartexlabs/label-studio:1.23.2}"
    assert services["backend"]["environment"]["LABEL_STUDIO_URL"] == "http://label-studio:8080"
    # Label Studio makes no webhook to a host without a dot: the backend is called by an alias with one.
    assert services["backend"]["environment"]["BACKEND_URL"] == "http://backend.internal:9090"
    assert services["backend"]["networks"]["default"]["aliases"] == ["backend.internal"]
    assert services["init"]["environment"]["BACKEND_URL"] == "http://backend.internal:9090"
    assert services["backend"]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert (
        "mlflow server" in services["mlflow"]["command"]
        and "--allowed-hosts mlflow" in services["mlflow"]["command"]
    )
    studio_env = services["label-studio"]["environment"]
    assert studio_env["SSRF_PROTECTION_ENABLED"] == "false" and studio_env["ML_BLOCK_LOCAL_IP"] == "false"
    declared = set(compose("docker-compose.yml")["volumes"])
    mounted = [v for s in services.values() for v in s.get("volumes", []) if not v.endswith(":ro")]
    used = {v.split(":")[0] for v in mounted}  # read-only binds are input, not state
    assert used <= declared, "all state lives in named volumes"


def test_env_example_documents_exactly_what_is_used():
    documented = set(env_example())
    used = set().union(*(interpolated((REPO / name).read_text()) for name in COMPOSE_FILES))
    assert used <= documented, used - documented
    assert documented <= used | READ_BY_THE_BACKEND, documented - used - READ_BY_THE_BACKEND


def test_every_setting_the_env_example_offers_reaches_the_backend_and_its_workers():
    """A lead who sets a variable of .env.example expects the backend to see it; MODEL_NAME is the
    image's (a build argument: containers fetch no model)."""
    offered = set(env_example()) & READ_BY_THE_BACKEND - {"MODEL_NAME"}
    passed = set(compose("docker-compose.yml")["services"]["backend"]["environment"])
    assert offered <= passed, sorted(offered - passed)
    assert "MODEL_NAME" in compose("docker-compose.yml")["x-backend-image"]["build"]["args"]


def test_label_studio_and_its_database_go_first_when_the_cpu_is_short():
    services = compose("docker-compose.yml")["services"]
    default = 1024  # Docker's weight of a container that sets none
    for name in ("label-studio", "db"):
        assert services[name]["cpu_shares"] >= 4 * default, name
    assert all("cpu_shares" not in services[name] for name in ("backend", "worker", "mlflow"))


def test_env_example_values_are_valid_settings():
    example = env_example() | {secret: "a-secret-value-123" for secret in SECRETS}
    values = {k.lower(): v for k, v in example.items() if k in READ_BY_THE_BACKEND and v}
    load_settings(**values)  # raises on any invalid value


def test_dockerfile_sets_only_known_variables_and_runs_as_a_user():
    assert dockerfile_env() <= READ_BY_THE_BACKEND | READ_BY_LIBRARIES, dockerfile_env()
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^USER (?!root)\w+", text, re.MULTILINE)
    healthcheck = re.search(r'^HEALTHCHECK .*CMD \["coding-backend", "(\w+)"\]', text, re.MULTILINE)
    command = re.search(r'^CMD \["coding-backend", "(\w+)"', text, re.MULTILINE)
    subcommands = build_parser()._subparsers._group_actions[0].choices
    assert healthcheck and healthcheck.group(1) in subcommands
    assert command and command.group(1) == "serve"


def test_healthcheck_command_tells_a_serving_backend_from_a_missing_one(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "BASIC_AUTH_USER": "u",
        "BASIC_AUTH_PASS": "p",
        "MODEL_DIR": str(tmp_path),
        "LOG_LEVEL": "WARNING",
    }
    executable = str(Path(sys.executable).parent / "coding-backend")
    server = subprocess.Popen([executable, "serve", "--dev", "--host", "127.0.0.1"], env=env)

    def answers() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).status_code == 401
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, 30, "the server to answer (401 without credentials)", interval=0.2)
        assert subprocess.run([executable, "healthcheck"], env=env).returncode == 0
        elsewhere = {**env, "PORT": str(free_port())}
        assert subprocess.run([executable, "healthcheck"], env=elsewhere, capture_output=True).returncode == 1
    finally:
        server.terminate()
        server.wait(10)


SECRETS = ("LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_API_KEY", "BASIC_AUTH_PASS", "POSTGRES_PASSWORD")


def test_compose_publishes_on_localhost_only_and_never_mlflow():
    services = compose("docker-compose.yml")["services"]
    for name in ("label-studio", "backend"):
        [port] = services[name]["ports"]
        assert port.startswith("${") and ":-127.0.0.1}:" in port, f"{name} is published on all interfaces"
    assert "ports" not in services["mlflow"], "MLflow has no authentication: it is not published"


def test_compose_refuses_to_start_without_the_secrets_and_the_example_ships_none():
    text = (REPO / "docker-compose.yml").read_text()
    for secret in SECRETS:
        assert re.search(rf"\$\{{{secret}:\?", text), f"compose starts without {secret}"
        assert env_example()[secret] == "", f".env.example ships a value for {secret}"
    assert re.search(r"\$\{BASIC_AUTH_USER:\?", text)


def test_services_start_in_order_of_health_and_postgres_is_only_on_label_studios_network():
    services = compose("docker-compose.yml")["services"]
    needs = {name: service.get("depends_on", {}) for name, service in services.items()}
    assert needs["label-studio"] == {"db": {"condition": "service_healthy"}}
    assert set(needs["backend"]) == {"label-studio", "mlflow"}
    assert set(needs["init"]) == {"label-studio", "backend"}
    assert all(c == {"condition": "service_healthy"} for n in needs.values() for c in n.values())
    for name in ("db", "label-studio", "mlflow"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", f"{name} has no healthcheck of its own"
    assert "5000/health" in services["mlflow"]["healthcheck"]["test"][-1], "not the backend image's check"
    assert services["db"]["networks"] == ["database"] and "ports" not in services["db"]
    assert compose("docker-compose.yml")["networks"]["database"]["internal"] is True
    env = services["label-studio"]["environment"]
    assert env["DJANGO_DB"] == "default" and env["POSTGRE_HOST"] == "db"
    assert env["SENTRY_DSN"] == "" and env["FRONTEND_SENTRY_DSN"] == ""


def test_the_scale_profile_runs_workers_on_the_backends_store_through_an_unpublished_redis():
    services = compose("docker-compose.yml")["services"]
    assert services["redis"]["profiles"] == services["worker"]["profiles"] == ["scale"]
    assert "ports" not in services["redis"] and "ports" not in services["worker"]
    assert services["worker"]["environment"] == services["backend"]["environment"]  # one configuration
    assert services["worker"]["volumes"] == services["backend"]["volumes"]  # one model store
    command = services["worker"]["command"].replace(
        "${WORKER_QUEUES:-fast,predict,body}", "fast,predict,body"
    )
    assert build_parser().parse_args(command.split()[1:]).command == "worker"
    offline = compose("docker/compose.offline.yml")["services"]
    assert offline["redis"]["build"]["dockerfile"] == "redis.Dockerfile"
