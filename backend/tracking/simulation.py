"""A simulation's runs: a parent run per (configuration, seed), a nested run per round."""

from __future__ import annotations

from backend.tracking.runs import Run, record_run


def log_simulation(uri: str, experiment: str, run_name: str, params: dict, rounds: list[dict]) -> None:
    """One finished (configuration, seed); never raises.

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

    record_run(uri, experiment, run_name, {"kind": "simulation"}, write, f"simulation {run_name}")
