"""A Label Studio project's runs: one per training round, one per change in inter-coder agreement."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from backend.tracking.runs import Run, flat_metrics, prepare_experiment, record_run

TOP_RANKED = 25


def round_metrics(summary: Mapping) -> dict[str, float]:
    """A round's metrics: seconds, counts per code, cross-validated figures per code and macro, and
    the model's overall kappa and alpha with each coder (per code in code_report.json)."""
    metrics = {"training_seconds": summary["last_training_seconds"], "n_labeled": summary["labeled"]}
    metrics |= flat_metrics("label_count_", summary["label_counts"])
    quality = summary.get("quality") or {}
    for code, figures in (quality.get("codes") or {}).items():
        metrics |= flat_metrics(
            "cv_", {f"{name}_{code}": v for name, v in figures.items() if name != "positives"}
        )
    metrics |= flat_metrics("cv_macro_", quality.get("macro") or {})
    for coder, figures in ((summary.get("model_agreement") or {}).get("with") or {}).items():
        overall = figures["overall"]
        metrics |= flat_metrics(
            "model_", {f"kappa_{coder}": overall["kappa"], f"alpha_{coder}": overall["alpha"]}
        )
    stopping = summary.get("stopping") or {}
    metrics |= flat_metrics("stopping_", {"changed_share": stopping.get("changed_share")})
    return metrics


class ProjectTracker:
    """Records one project's rounds in its experiment, ``label-studio-project-<id>``."""

    def __init__(self, uri: str, project: str, public_settings: Mapping[str, object]):
        self.uri, self.project, self.public_settings = uri, str(project), dict(public_settings)

    def prepare(self) -> None:
        """Create the experiment (and a first local store) before the first round needs it: with
        SQLite that takes seconds, which a coder would otherwise wait for behind the first record."""
        prepare_experiment(self.uri, self.experiment, f"project {self.project}")

    @property
    def experiment(self) -> str:
        return f"label-studio-project-{self.project}"

    def log_round(self, version: str, summary: Mapping, ranked_task_ids: np.ndarray) -> str | None:
        """Record one training round; `summary` holds its figures (see worker/publish.py). Returns the
        run's ``"<experiment id>/<run id>"``, or None when tracking failed."""
        quality = summary.get("quality") or {}
        params = {
            **self.public_settings,
            "codes": ",".join(summary["label_counts"]),
            "n_labeled": summary["labeled"],
            "coders": ",".join(summary["coders"]),
            "n_coders": len(summary["coders"]),
            "cv_method": quality.get("method", "none (not a SetFit model)"),
        }
        report = {
            name: summary.get(name)
            for name in ("label_counts", "rare_codes", "coders", "quality", "model_agreement", "stopping")
        }

        def write(run: Run) -> None:
            run.log_params(params)
            run.log_metrics(round_metrics(summary))
            run.set_tags({"model_version": version})
            top = [int(task) for task in ranked_task_ids[:TOP_RANKED]]
            run.log_dict({"most_informative_task_ids": top}, "next_segments.json")
            run.log_dict(report, "code_report.json")

        return self._record(version, "training", write)

    def log_agreement(self, figures: Mapping) -> None:
        """Record changed inter-coder agreement (see domain/agreement.py) as its own run."""
        metrics = {"agreement_tasks": figures["tasks"]}
        for name, item in [*figures["codes"].items(), ("overall", figures["overall"])]:
            metrics |= flat_metrics(
                f"{name}_",
                {
                    "percent_agreement": item["percent_agreement"],
                    "krippendorff_alpha": item["krippendorff_alpha"],
                },
            )

        def write(run: Run) -> None:
            run.log_params({"coders": ",".join(figures["coders"]), "n_coders": len(figures["coders"])})
            run.log_metrics(metrics)
            run.log_dict(dict(figures), "agreement.json")

        self._record("agreement", "agreement", write)

    def log_validation(self, version: str, estimates: Mapping) -> str | None:
        """Record a version's estimates on the blind validation sample (storage/validation.py's
        Estimates) as its own run: per code each figure, its 95 % interval and its n."""
        metrics = {"validation_coded": estimates["coded"]}
        for code, figures in estimates["codes"].items():
            prevalence = figures["prevalence"]
            named = {name: figures[name] for name in ("precision", "recall", "f1")}
            named |= {"prevalence_ppi": prevalence["ppi"], "prevalence_classical": prevalence["classical"]}
            for name, interval in named.items():  # e.g. validation_recall_low_mental_health
                metrics |= flat_metrics(
                    f"validation_{name}_", {f"{part}_{code}": interval[part] for part in ("low", "high", "n")}
                )
                metrics |= flat_metrics(f"validation_{name}_", {code: interval["estimate"]})

        def write(run: Run) -> None:
            run.log_params({"validation_held_out": estimates["held_out"], "model_version": version})
            run.log_metrics(metrics)
            run.set_tags({"model_version": version})
            run.log_dict(dict(estimates), "validation_estimates.json")

        return self._record(f"validation {version}", "validation", write)

    def _record(self, name: str, kind: str, write) -> str | None:
        tags = {"label_studio_project": self.project, "kind": kind}
        return record_run(self.uri, self.experiment, name, tags, write, f"project {self.project}")
