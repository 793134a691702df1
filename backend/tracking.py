"""MLflow tracking: one run per training round, in one experiment per Label Studio project.

Tracking never fails a round: any MLflow error is logged as a warning and the round goes on.
Only public settings are recorded (no API keys or passwords), and the tracking URI itself is
never logged (it may carry credentials).
"""

from __future__ import annotations

import logging
import os
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


def tracking_uri(settings: Settings) -> str:
    """MLFLOW_TRACKING_URI, or a local SQLite store under MODEL_DIR (works with no server)."""
    if settings.mlflow_tracking_uri:
        return settings.mlflow_tracking_uri.get_secret_value()
    return f"sqlite:///{Path(settings.model_dir).resolve() / 'mlflow.db'}"


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
    uri = tracking_uri(settings)
    try:
        for name, value in HTTP_LIMITS.items():
            os.environ.setdefault(name, value)
        import mlflow

        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(f"label-studio-project-{project}")
        with mlflow.start_run(run_name=version):
            params = {**settings.public(), "codes": ",".join(codes), "n_labeled": len(labeled)}
            mlflow.log_params(params)
            counts = labeled.sum(axis=0) if len(labeled) else np.zeros(len(codes))
            metrics = {f"label_count_{code}": float(n) for code, n in zip(codes, counts, strict=True)}
            mlflow.log_metrics({"training_seconds": training_seconds, "n_labeled": len(labeled), **metrics})
            mlflow.set_tags({"model_version": version, "label_studio_project": project})
            mlflow.log_dict({"most_informative_task_ids": ranked_task_ids[:TOP_RANKED]}, "next_segments.json")
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}".replace(uri, "<MLFLOW_TRACKING_URI>")[:300]
        log.warning("project %s: MLflow tracking failed, the round goes on (%s)", project, reason)
