"""MLflow runs through an explicit client, never raising (see the package docstring)."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backend.config import ServerSettings

log = logging.getLogger(__name__)
# MLflow retries HTTP with exponential backoff for minutes by default; a dead tracking server
# must not hold a round (and the coders waiting for it) that long.
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def tracking_uri(server: ServerSettings, local_dir: Path | None = None, store: str = "mlflow.db") -> str:
    """MLFLOW_TRACKING_URI, or a local SQLite store in `local_dir` (default MODEL_DIR; needs no server)."""
    if server.mlflow_tracking_uri:
        return server.mlflow_tracking_uri.get_secret_value()
    return f"sqlite:///{Path(local_dir or server.model_dir).resolve() / store}"


def flat_metrics(prefix: str, figures: Mapping[str, object]) -> dict[str, float]:
    """`{prefix}{name}` → value for the numeric entries (None and text are left out).

    Characters MLflow refuses in metric names (codes may hold any) become underscores.
    """
    return {
        re.sub(r"[^\w\-. /]", "_", f"{prefix}{name}"): float(value)
        for name, value in figures.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def artifact_location(uri: str) -> str | None:
    """Artifacts beside a local SQLite store (MLflow puts them in ./mlruns of the working directory
    otherwise, wherever the backend happens to run); a server decides for itself (None)."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()


class Run:
    """One MLflow run, written through an explicit client (the fluent API keeps process-wide state
    that goes wrong when one process uses several stores)."""

    def __init__(self, client, run_id: str, experiment_id: str):
        self.client, self.run_id, self.experiment_id = client, run_id, experiment_id

    @classmethod
    @contextmanager
    def start(cls, client, experiment_id: str, name: str, tags: dict) -> Iterator[Run]:
        """A run that is ended (FINISHED, or FAILED on an error) whatever happens inside."""
        run = client.create_run(experiment_id, run_name=name, tags=tags)
        status = "FAILED"
        try:
            yield cls(client, run.info.run_id, experiment_id)
            status = "FINISHED"
        finally:
            client.set_terminated(run.info.run_id, status=status)

    def child(self, name: str):
        """A nested run (MLflow's parent tag), as the study logged its rounds."""
        return Run.start(self.client, self.experiment_id, name, {"mlflow.parentRunId": self.run_id})

    def log_params(self, params: Mapping[str, object]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(self.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)

    def log_dict(self, content: Mapping, artifact_file: str) -> None:
        self.client.log_dict(self.run_id, dict(content), artifact_file)


def record_run(
    uri: str, experiment: str, name: str, tags: dict, write: Callable[[Run], None], what: str
) -> str | None:
    """A run in `experiment` (created when missing), filled by `write`; errors are logged, never raised.

    Returns ``"<experiment id>/<run id>"`` (for links to the MLflow UI), or None when it failed."""
    try:
        client, experiment_id = open_experiment(uri, experiment)
        with Run.start(client, experiment_id, name, tags) as run:
            write(run)
        return f"{experiment_id}/{run.run_id}"
    except Exception as exc:
        log.warning("%s: MLflow tracking failed, work goes on (%s)", what, redacted(exc, uri))
        return None


def redacted(exc: Exception, uri: str) -> str:
    """An error's text without the tracking URI (it may carry credentials)."""
    return f"{type(exc).__name__}: {exc}".replace(uri, "<MLFLOW_TRACKING_URI>")[:300]


def open_experiment(uri: str, experiment: str):
    """A client of the tracking store at `uri` and the id of `experiment` there, created when missing
    (and with a first SQLite store, its tables: a few seconds)."""
    for variable, value in HTTP_LIMITS.items():
        os.environ.setdefault(variable, value)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found:
        return client, found.experiment_id
    try:
        return client, client.create_experiment(experiment, artifact_location=artifact_location(uri))
    except Exception:
        found = client.get_experiment_by_name(experiment)  # another process created it meanwhile
        if found is None:
            raise
        return client, found.experiment_id


def prepare_experiment(uri: str, experiment: str, what: str) -> None:
    """Create the store and the experiment ahead of the first record; errors are logged, never raised."""
    try:
        open_experiment(uri, experiment)
    except Exception as exc:
        log.warning("%s: MLflow tracking not ready, work goes on (%s)", what, redacted(exc, uri))
