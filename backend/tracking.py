"""MLflow tracking: one run per training round, in one experiment per Label Studio project;
for simulations, a parent run per (configuration, seed) with a nested run per round.

Tracking never fails a round or a simulation: any MLflow error is logged as a warning and the round goes on.
Only public settings are recorded (no API keys or passwords), and the tracking URI itself is
never logged (it may carry credentials).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from backend.config import Settings

log = logging.getLogger(__name__)
TOP_RANKED = 25
# MLflow retries HTTP with exponential backoff for minutes by default; a dead tracking server
# must not hold a round (and the coders waiting for it) that long.
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def tracking_uri(settings: Settings, local_dir: Path | None = None) -> str:
    """MLFLOW_TRACKING_URI, or a local SQLite store in `local_dir` (default MODEL_DIR; needs no server)."""
    if settings.mlflow_tracking_uri:
        return settings.mlflow_tracking_uri.get_secret_value()
    return f"sqlite:///{Path(local_dir or settings.model_dir).resolve() / 'mlflow.db'}"


@contextmanager
def _never_failing(uri: str, what: str) -> Iterator:
    """Yield mlflow pointed at `uri`; any error becomes a warning naming `what` (the URI scrubbed)."""
    try:
        for name, value in HTTP_LIMITS.items():
            os.environ.setdefault(name, value)
        import mlflow

        mlflow.set_tracking_uri(uri)
        with warnings.catch_warnings():  # its store's deprecation notices are not ours to act on
            warnings.simplefilter("ignore", DeprecationWarning)
            yield mlflow
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}".replace(uri, "<MLFLOW_TRACKING_URI>")[:300]
        log.warning("%s: MLflow tracking failed, work goes on (%s)", what, reason)


def log_round(
    settings: Settings,
    project: str,
    version: str,
    *,
    codes: list[str],
    labeled: np.ndarray,
    training_seconds: float,
    ranked_task_ids: list[int],
) -> None:
    """Record one round; never raises."""
    with _never_failing(tracking_uri(settings), f"project {project}, round {version}") as mlflow:
        mlflow.set_experiment(f"label-studio-project-{project}")
        with mlflow.start_run(run_name=version):
            params = {**settings.public(), "codes": ",".join(codes), "n_labeled": len(labeled)}
            mlflow.log_params(params)
            counts = labeled.sum(axis=0) if len(labeled) else np.zeros(len(codes))
            metrics = {f"label_count_{code}": float(n) for code, n in zip(codes, counts, strict=True)}
            mlflow.log_metrics({"training_seconds": training_seconds, "n_labeled": len(labeled), **metrics})
            mlflow.set_tags({"model_version": version, "label_studio_project": project})
            mlflow.log_dict({"most_informative_task_ids": ranked_task_ids[:TOP_RANKED]}, "next_segments.json")


def log_simulation(uri: str, experiment: str, run_name: str, params: dict, rounds: list[dict]) -> None:
    """One finished (configuration, seed): a parent run with `params`, a nested run per round; never raises.

    Each round is ``{"round", "metrics": {name: number}, "selected": [segment ids]}``; the ids added
    before that round's training are stored as the nested run's artifact ``selected.json``. The
    parent run carries the last round's metrics.
    """
    with _never_failing(uri, f"simulation {run_name}") as mlflow:
        mlflow.set_experiment(experiment)
        with mlflow.start_run(run_name=run_name):
            mlflow.log_params(params)
            for row in rounds:
                with mlflow.start_run(run_name=f"{run_name}-round{row['round']}", nested=True):
                    mlflow.log_metrics(row["metrics"])
                    mlflow.log_dict({"round": row["round"], "selected": row["selected"]}, "selected.json")
            mlflow.log_metrics(rounds[-1]["metrics"])
