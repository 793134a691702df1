"""MLflow runs through the one explicit client (backend/tracking/runs.py), on a real SQLite store."""

from backend.tracking.runs import open_experiment


def test_an_experiment_another_process_created_meanwhile_is_used_not_lost(tmp_path, monkeypatch):
    """Shards of a simulation start together against one tracking server: the lookup of each finds
    no experiment, one creates it, and the other's create fails. That one looks it up again."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    created = MlflowClient(tracking_uri=uri).create_experiment("grid")  # the other process
    looked_up = []
    lookup = MlflowClient.get_experiment_by_name

    def missing_the_first_time(self, name):
        looked_up.append(name)
        return None if len(looked_up) == 1 else lookup(self, name)

    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", missing_the_first_time)
    _, experiment_id = open_experiment(uri, "grid")
    assert experiment_id == created and looked_up == ["grid", "grid"]
