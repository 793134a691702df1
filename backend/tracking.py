"""MLflow tracking: one run per training round, in one experiment per Label Studio project;
for simulations, a parent run per (configuration, seed) with a nested run per round.

Tracking never fails a round: any MLflow error is logged as a warning and the round goes on.
Only public settings are recorded (no API keys or passwords), and the tracking URI itself is
never logged (it may carry credentials).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

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


def _flat_metrics(prefix: str, figures: Mapping[str, object]) -> dict[str, float]:
    """`{prefix}{name}` → value for the numeric entries (None and text are left out).

    Characters MLflow refuses in metric names (codes may hold any) become underscores.
    """
    return {re.sub(r"[^\w\-. /]", "_", f"{prefix}{name}"): float(value) for name, value in figures.items()
            if isinstance(value, int | float) and not isinstance(value, bool)}  # fmt: skip


def round_metrics(summary: Mapping) -> dict[str, float]:
    """A round's metrics: seconds, counts per code, cross-validated figures per code and macro."""
    metrics = {"training_seconds": summary["last_training_seconds"], "n_labeled": summary["labeled"]}
    metrics |= _flat_metrics("label_count_", summary["label_counts"])
    quality = summary.get("quality") or {}
    for code, figures in (quality.get("codes") or {}).items():
        metrics |= _flat_metrics(
            "cv_", {f"{name}_{code}": v for name, v in figures.items() if name != "positives"}
        )
    metrics |= _flat_metrics("cv_macro_", quality.get("macro") or {})
    stopping = summary.get("stopping") or {}
    metrics |= _flat_metrics("stopping_", {"changed_share": stopping.get("changed_share")})
    return metrics


def log_round(
    settings: Settings, project: str, version: str, summary: Mapping, *, ranked_task_ids: list[int]
) -> None:
    """Record one training round (see Round.train for `summary`); never raises."""
    quality = summary.get("quality") or {}
    params = {
        **settings.public(),
        "codes": ",".join(summary["label_counts"]),
        "n_labeled": summary["labeled"],
        "coders": ",".join(summary["coders"]),
        "n_coders": len(summary["coders"]),
        "cv_method": quality.get("method", "none (not a SetFit model)"),
    }
    report = {
        name: summary.get(name) for name in ("label_counts", "rare_codes", "coders", "quality", "stopping")
    }

    def write(run: Run) -> None:
        run.log_params(params)
        run.log_metrics(round_metrics(summary))
        run.set_tags({"model_version": version})
        run.log_dict({"most_informative_task_ids": ranked_task_ids[:TOP_RANKED]}, "next_segments.json")
        run.log_dict(report, "code_report.json")

    _record(settings, project, version, "training", write)


def log_agreement(settings: Settings, project: str, figures: Mapping) -> None:
    """Record changed inter-coder agreement (see agreement.py) as its own run; never raises."""
    metrics = {"agreement_tasks": figures["tasks"]}
    for name, item in [*figures["codes"].items(), ("overall", figures["overall"])]:
        metrics |= _flat_metrics(f"{name}_", {"percent_agreement": item["percent_agreement"],
                                               "krippendorff_alpha": item["krippendorff_alpha"]})  # fmt: skip

    def write(run: Run) -> None:
        run.log_params({"coders": ",".join(figures["coders"]), "n_coders": len(figures["coders"])})
        run.log_metrics(metrics)
        run.log_dict(dict(figures), "agreement.json")

    _record(settings, project, "agreement", "agreement", write)


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


def log_simulation(uri: str, experiment: str, run_name: str, params: dict, rounds: list[dict]) -> None:
    """One finished (configuration, seed): a parent run with `params`, a nested run per round; never raises.

    Each round is ``{"round", "metrics": {name: number}, "selected": [segment ids]}``; the ids added
    before that round's training are stored as the nested run's artifact ``selected.json``. The
    parent run carries the last round's metrics.
    """

    def write(run: Run) -> None:
        run.log_params(params)
        for row in rounds:
            with run.child(f"{run_name}-round{row['round']}") as nested:
                nested.log_metrics(row["metrics"])
                nested.log_dict({"round": row["round"], "selected": row["selected"]}, "selected.json")
        run.log_metrics(rounds[-1]["metrics"])

    _open_run(uri, experiment, run_name, {"kind": "simulation"}, write, f"simulation {run_name}")


def _record(settings: Settings, project: str, name: str, kind: str, write: Callable[[Run], None]) -> None:
    """A run in the project's experiment, filled by `write`; errors are logged, never raised."""
    tags = {"label_studio_project": project, "kind": kind}
    _open_run(
        tracking_uri(settings), f"label-studio-project-{project}", name, tags, write, f"project {project}"
    )


def _open_run(
    uri: str, experiment: str, name: str, tags: dict, write: Callable[[Run], None], what: str
) -> None:
    try:
        for variable, value in HTTP_LIMITS.items():
            os.environ.setdefault(variable, value)
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        with Run.start(client, experiment_id, name, tags) as run:
            write(run)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}".replace(uri, "<MLFLOW_TRACKING_URI>")[:300]
        log.warning("%s: MLflow tracking failed, work goes on (%s)", what, reason)
