"""A real Label Studio 1.23.2 for the end-to-end tests, from its own virtualenv, on each of the
databases it runs on: SQLite (its default) and PostgreSQL (its production setup; null prediction
scores sort last there, first on SQLite).

The virtualenv is `LABEL_STUDIO_VENV` (default `<repo>/.ls-venv`); `.ci/run` creates it, and a
developer's first run creates it too (a few minutes). PostgreSQL is Debian's `postgresql` package
(`.ci/run` installs it); without it the PostgreSQL runs are skipped, saying why.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from backend.devtools.local_postgres import POSTGRES_BIN, LocalPostgres

DATABASES = ("sqlite", "postgresql")


@pytest.fixture(scope="session", params=DATABASES)
def label_studio(request, tmp_path_factory, label_studio_executable, seed_studio_dir):
    from backend.devtools.local_studio import LocalLabelStudio

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
    if database == "sqlite":
        seed_studio_dir(data_dir)  # migrated once per Label Studio version (tests/conftest.py)
    with LocalLabelStudio(label_studio_executable, data_dir=data_dir, extra_env=extra_env) as server:
        server.database = database
        yield server


def backend_env(label_studio, model_path: str, workdir: Path, auth: tuple[str, str], **extra: str) -> dict:
    """The environment of a backend under test: the bundled model with tiny budgets, its MODEL_DIR
    in `workdir`, basic auth, this Label Studio, new tasks' predictions imported; `extra` adds or
    overrides settings."""
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
        "WRITE_BY_IMPORT": "true",  # the tests' Label Studio imports quickly (devtools/local_studio.py)
        **extra,
    }
