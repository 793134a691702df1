"""A real Label Studio 1.23.2 for the end-to-end tests, from its own virtualenv, on each of the
databases it runs on: SQLite (its default) and PostgreSQL (its production setup; null prediction
scores sort last there, first on SQLite).

The virtualenv is `LABEL_STUDIO_VENV` (default `<repo>/.ls-venv`); `.ci/run` creates it, and a
developer's first run creates it too (a few minutes). PostgreSQL is Debian's `postgresql` package
(`.ci/run` installs it); without it the PostgreSQL runs are skipped, saying why.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from backend.devtools.local_studio import free_port
from tests.helpers import REPO, wait_for

DATABASES = ("sqlite", "postgresql")
POSTGRES_BIN = Path(os.environ.get("POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))


class LocalPostgres:
    """A throwaway PostgreSQL server on 127.0.0.1, run as the `postgres` user (it refuses root)."""

    def __init__(self, directory: Path):
        self.directory, self.port = directory, free_port()
        self.name, self.user, self.password = "labelstudio", "labelstudio", "ls-e2e-password"

    def _as_postgres(self, *command: str, **kwargs) -> subprocess.CompletedProcess:
        runner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*runner, *command], check=True, capture_output=True, text=True, **kwargs)

    def start(self) -> "LocalPostgres":
        data, sockets = self.directory / "data", self.directory / "sockets"
        for path in (self.directory, sockets):
            path.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(path, "postgres", "postgres")
        self._as_postgres(str(POSTGRES_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={sockets}"
        self._as_postgres(
            str(POSTGRES_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.directory / "postgres.log"),
            "-w",
            "start",
            timeout=120,
        )
        psql = [str(POSTGRES_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c"]
        wait_for(
            lambda: subprocess.run([*psql, "select 1"], capture_output=True).returncode == 0,
            60,
            "PostgreSQL to accept connections",
        )
        subprocess.run(
            [*psql, f"create user {self.user} password '{self.password}'"], check=True, capture_output=True
        )
        subprocess.run(
            [*psql, f"create database {self.name} owner {self.user}"], check=True, capture_output=True
        )
        return self

    def stop(self) -> None:
        self._as_postgres(
            str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast", "stop", timeout=60
        )

    def label_studio_env(self) -> dict[str, str]:
        """What Label Studio reads to use this server."""
        return {
            "DJANGO_DB": "default",
            "POSTGRE_NAME": self.name,
            "POSTGRE_USER": self.user,
            "POSTGRE_PASSWORD": self.password,
            "POSTGRE_HOST": "127.0.0.1",
            "POSTGRE_PORT": str(self.port),
        }


@pytest.fixture(scope="session", params=DATABASES)
def label_studio(request, tmp_path_factory):
    from backend.devtools.local_studio import LocalLabelStudio, ensure_label_studio

    venv = Path(os.environ.get("LABEL_STUDIO_VENV", REPO / ".ls-venv"))
    executable = ensure_label_studio(venv)
    database, extra_env = request.param, {}
    if database == "postgresql":
        if not (POSTGRES_BIN / "initdb").exists():
            pytest.skip(f"no PostgreSQL server at {POSTGRES_BIN} (apt-get install postgresql)")
        # Not under pytest's temporary directory: the postgres user may not enter it (mode 700).
        directory = Path(tempfile.mkdtemp(prefix="ls-postgres-"))
        request.addfinalizer(lambda: shutil.rmtree(directory, ignore_errors=True))
        postgres = LocalPostgres(directory).start()
        request.addfinalizer(postgres.stop)
        extra_env = postgres.label_studio_env()
    data_dir = tmp_path_factory.mktemp(f"label-studio-{database}")
    with LocalLabelStudio(executable, data_dir=data_dir, extra_env=extra_env) as server:
        server.database = database
        yield server


def backend_env(label_studio, model_path: str, workdir: Path, auth: tuple[str, str], **extra: str) -> dict:
    """The environment of a backend under test: the bundled model with tiny budgets, its MODEL_DIR
    in `workdir`, basic auth, this Label Studio; `extra` adds or overrides settings."""
    return {
        **os.environ,
        "MODEL_NAME": model_path,
        "MODEL_DIR": str(workdir / "models"),
        "SETFIT_NUM_ITERATIONS": "2",
        "SETFIT_MAX_STEPS": "4",
        "MAX_LENGTH": "64",
        "LABEL_STUDIO_URL": label_studio.url,
        "LABEL_STUDIO_API_KEY": label_studio.token,
        "BASIC_AUTH_USER": auth[0],
        "BASIC_AUTH_PASS": auth[1],
        "HF_HUB_OFFLINE": "1",
        **extra,
    }
