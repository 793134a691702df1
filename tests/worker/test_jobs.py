"""The jobs against the in-memory Label Studio of tests/fakes.py (the real one: tests/e2e)."""

import json
import logging
import pickle
import subprocess
import sys

import pytest

from backend.config import with_overrides
from backend.domain.versions import LIVE
from backend.learning.devices import resolved_precision
from backend.learning.setfit_model import SetFitCodingModel
from backend.queue.files import FileQueue
from backend.queue.work import Lane, WorkKind
from backend.storage.atomic import write_identity
from backend.storage.inbox import AnnotationEvent, Inbox
from backend.storage.layout import ProjectDir
from backend.storage.state import LaneStatus, StateStore
from backend.storage.versions import ModelStore
from backend.studio.client import StudioError
from backend.studio.task_predictions import queue_score
from backend.worker.bodies import Bodies
from backend.worker.labels import KeptLabels
from backend.worker.publish import Publisher
from backend.worker.wiring import project_work
from tests.fakes import FakeStudio, RecordingQueue
from tests.helpers import written_by


def run_round(settings, studio, kind="train", queue=None):
    project_work("1", settings, studio, queue or RecordingQueue()).run(WorkKind(kind))
    return state_of(settings)


def state_of(settings, project="1"):
    return StateStore(ProjectDir(settings.server.model_dir, project)).read()


def store_of(settings):
    return ModelStore(settings.server.model_dir, settings.server.keep_versions)


def test_rounds_write_back_switch_and_update_each_prediction_in_place(segments, settings):
    studio = FakeStudio(segments, annotated=12)
    first = run_round(settings, studio)
    assert first.fast.status is LaneStatus.IDLE and first.labeled == 12
    version = first.current_version
    unlabeled = [t for t in studio.all.values() if not t.annotations]
    assert sorted(p["task"] for p in studio.predictions) == sorted(t.id for t in unlabeled)
    assert written_by(studio, settings.server.model_dir, version) == studio.predictions, "served, by it"
    assert min(p["score"] for p in studio.predictions) == queue_score(version, 0.0)
    assert all(len(p["result"]) == 2 for p in studio.predictions)
    assert studio.served == [LIVE]

    ids = {p["task"]: p["id"] for p in studio.predictions}
    second = run_round(settings, studio)
    assert second.current_version != version
    assert studio.served == [LIVE] and not studio.deleted, "the project serves the one name already"
    assert written_by(studio, settings.server.model_dir, second.current_version) == studio.predictions
    assert {p["task"]: p["id"] for p in studio.predictions} == ids, "a coder's open task keeps its prediction"
    assert max(p["score"] for p in studio.predictions) <= queue_score(version, 0.0), "below every older score"
    assert [r.outcome for r in second.rounds] == ["ok", "ok"]


def test_a_failed_round_leaves_the_serving_version_untouched(segments, settings):
    studio = FakeStudio(segments, annotated=12)
    serving = run_round(settings, studio).current_version
    studio.refuse_creates = True  # Label Studio refuses the queue head's prediction (its task is gone)
    failed = run_round(settings, studio)
    assert failed.fast.status is LaneStatus.FAILED and "refused the prediction of" in failed.fast.error
    assert failed.current_version == serving
    assert studio.served == [LIVE]
    assert written_by(studio, settings.server.model_dir, serving) == studio.predictions
    assert [v.name for v in store_of(settings).versions("1")] == [serving]


def test_no_round_before_enough_annotations(segments, settings):
    state = run_round(settings, FakeStudio(segments, annotated=4))
    assert state.waiting_for == 10 and state.labeled == 4
    assert state.current_version is None


def test_a_round_that_fails_still_counts_the_labels_it_found(segments, settings):
    waiting = run_round(settings, FakeStudio(segments, annotated=9))
    assert waiting.waiting_for == 10 and waiting.labeled == 9
    studio = FakeStudio(segments, annotated=12)
    studio.refuse_creates = True  # the write-back fails: Label Studio refuses the queue head
    failed = run_round(settings, studio)
    assert failed.fast.status is LaneStatus.FAILED and failed.current_version is None
    assert failed.labeled == 12 and failed.waiting_for is None, "not the 9 and 'waiting for 10' of before"


def test_each_round_is_an_mlflow_run_without_secrets(segments, settings):
    import mlflow
    from pydantic import SecretStr

    secret = with_overrides(
        settings, label_studio_api_key=SecretStr("tok-very-secret"), train_coders=["coder.a@example.org"]
    )
    studio = FakeStudio(segments, annotated=12)
    version = run_round(secret, studio).current_version
    client = mlflow.MlflowClient(
        tracking_uri=f"sqlite:///{settings.server.model_dir.resolve() / 'mlflow.db'}"
    )
    runs = client.search_runs([client.get_experiment_by_name("label-studio-project-1").experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["model_version"] == version and run.data.params["n_labeled"] == "12"
    assert run.data.params["query_strategy"] == "cviar"
    assert run.data.metrics["label_count_physical_health"] == 8.0
    assert "very-secret" not in str(run.data.params)
    assert run.data.params["coders"].startswith("coder-"), "coders are pseudonyms by default"
    assert "@" not in str(run.data.params), "no email reaches MLflow (TRAIN_CODERS neither)"
    state = state_of(settings)
    assert "@" not in state.model_dump_json(), "nor the state behind /metrics"
    assert list(state.monitoring.coders) == [run.data.params["coders"]]
    [figures] = state.figures  # the status page's point of this round, linked to its run
    assert (
        figures.version == version and figures.labeled == 12 and figures.label_counts["physical_health"] == 8
    )
    assert figures.mlflow_run == f"{run.info.experiment_id}/{run.info.run_id}"
    assert figures.f1["physical_health"] == run.data.metrics["cv_f1_physical_health"]
    assert state.progress is None, "the round's steps are over"
    assert "out-of-fold" in run.data.params["cv_method"]
    assert 0.0 <= run.data.metrics["cv_f1_physical_health"] <= 1.0
    assert "cv_macro_f1" in run.data.metrics
    artifacts = settings.server.model_dir.resolve() / "mlartifacts"
    assert run.info.artifact_uri.startswith(artifacts.as_uri()), "beside the store, not in ./mlruns"
    report = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/code_report.json")
    assert report["label_counts"]["physical_health"] == 8
    assert set(report["quality"]["codes"]) == set(report["label_counts"]) >= {"mental_health"}
    [coder] = report["model_agreement"]["with"]  # the model as a coder, with the one coder
    assert coder.startswith("coder-") and f"model_kappa_{coder}" in run.data.metrics
    ranked = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/next_segments.json")
    assert set(ranked["most_informative_task_ids"]) <= set(studio.unlabeled_ids())


def test_a_broken_tracking_server_never_fails_a_round(segments, settings):
    from pydantic import SecretStr

    broken = with_overrides(settings, mlflow_tracking_uri=SecretStr("http://127.0.0.1:9/"))
    state = run_round(broken, FakeStudio(segments, annotated=12))
    assert state.fast.status is LaneStatus.IDLE and state.current_version


def test_two_coders_agreement_rules_and_monitoring_reach_the_state(segments, settings):
    studio = FakeStudio(segments, annotated=12)
    for i in (0, 3, 8, 9):  # coder B re-codes four tasks: agrees on 0 and 8, adds daily_functioning on 3, 9
        extra = ["daily_functioning"] if i in (3, 9) else []
        studio.annotate(i, list(segments[i]["codes"]) + extra, user=2, when="2")
    first = run_round(with_overrides(settings, min_positives_per_code=3, coder_identities="email"), studio)
    watched = first.monitoring
    agreement = watched.agreement
    assert agreement["coders"] == ["coder.a@example.org", "coder.b@example.org"]
    assert agreement["tasks"] == 4
    daily = agreement["codes"]["daily_functioning"]
    assert daily["percent_agreement"] == pytest.approx(0.5)  # 2 of 4 tasks
    assert daily["cohen_kappa"]["coder.a@example.org | coder.b@example.org"] == {"kappa": 0.0, "units": 4}
    assert agreement["codes"]["physical_health"]["percent_agreement"] == 1.0
    assert watched.coders == {"coder.a@example.org": 12, "coder.b@example.org": 4}
    assert first.labeled == 12 and watched.labeled_tasks == 12
    # majority with a tie: the latest annotation (coder B's) decides, so tasks 3 and 9 count daily_functioning
    daily_before = sum("daily_functioning" in s["codes"] for s in segments[:12])
    assert watched.label_counts["daily_functioning"] == daily_before + 2
    assert watched.rare_codes == {c: n for c, n in watched.label_counts.items() if n < 3}
    assert watched.quality["labeled"] == 12 and watched.stopping is None
    saved = json.loads(
        (store_of(settings).get("1", first.current_version).path / "coding_model.json").read_text()
    )
    assert [watched.quality["codes"][code]["threshold"] for code in saved["codes"]] == saved["thresholds"]
    assert "pulled toward 0.5" in watched.quality["threshold_rule"], (
        "the status page says how they were chosen"
    )
    model = watched.model_agreement  # the model as a coder: compared with each on the tasks they coded
    assert model["coder"] == "model" and model["tasks"] == 12
    assert {coder: figures["tasks"] for coder, figures in model["with"].items()} == {
        "coder.a@example.org": 12,
        "coder.b@example.org": 4,
    }
    estimated = [code for code, figures in watched.quality["codes"].items() if figures["f1"] is not None]
    assert model["with"]["coder.a@example.org"]["overall"]["units"] == 12 * len(estimated)

    only_b = run_round(
        with_overrides(
            settings,
            train_coders=["CODER.B@example.org"],
            min_annotations_to_train=2,
            coder_identities="email",
        ),
        studio,
    )
    assert only_b.labeled == 4 and only_b.monitoring.coders == {"coder.b@example.org": 4}
    signal = only_b.monitoring.stopping
    assert signal["tasks_compared"] == 24 and 0 <= signal["changed"] <= 24
    assert signal["stop"] == (signal["changed_share"] <= settings.loop.stopping_change_threshold)


def test_per_coder_rule_trains_on_every_coders_answer(segments, settings):
    studio = FakeStudio(segments, annotated=12)
    for i in range(3):
        studio.annotate(i, [], user=2, when="2")
    state = run_round(with_overrides(settings, multi_coder_rule="per_coder"), studio)
    assert state.labeled == 15 and state.monitoring.labeled_tasks == 12


def test_without_fine_tuning_heads_stay_on_the_base_body(segments, settings):
    """SETFIT_MAX_STEPS=0: the fast loop serves heads on the base body and never asks for a body."""
    studio, queue = FakeStudio(segments, annotated=12), RecordingQueue()
    state = run_round(with_overrides(settings, setfit_max_steps=0), studio, queue=queue)
    assert store_of(settings).get("1", state.current_version).metadata["body"] == "base"
    assert queue.requests == [], "no body is due"


def test_a_round_that_fails_after_its_first_writes_leaves_none_of_them_served(segments, settings):
    studio = FakeStudio(segments, annotated=12)
    settings = with_overrides(settings, write_first=3)
    serving = run_round(settings, studio).current_version
    total, update, calls = len(studio.predictions), studio.update_prediction, []

    def refuse_the_third(project, prediction_id, prediction):
        calls.append(prediction_id)
        if len(calls) == 3:
            raise StudioError("Label Studio refused the prediction", 400)
        update(project, prediction_id, prediction)

    studio.update_prediction = refuse_the_third
    studio.annotate(12, segments[12]["codes"], user=1, when="2")
    failed = run_round(settings, studio)
    assert failed.fast.status is LaneStatus.FAILED and failed.current_version == serving
    left = [p for p in studio.predictions if p["model_version"] not in (LIVE, serving)]
    assert len(left) == 2 and len(studio.of_version(LIVE)) == total - 2, "its two writes demoted"
    assert written_by(studio, settings.server.model_dir, serving) == studio.of_version(LIVE)
    assert studio.most_per_task() == 1


def test_the_fast_loop_refits_heads_and_a_body_lane_fine_tunes(segments, settings):
    studio, queue = FakeStudio(segments, annotated=12), RecordingQueue()
    first = run_round(settings, studio, queue=queue)
    version = store_of(settings).get("1", first.current_version)
    assert version.metadata["round"] == "head" and version.metadata["body"] == "base"
    assert not (version.path / "setfit").exists(), "a head version saves no body"
    assert queue.requests == [("1", "body")], "the first body is asked for at once"

    body = run_round(settings, studio, kind="body", queue=queue)
    assert body.body.status is LaneStatus.IDLE and body.body.labeled == 12
    assert queue.requests[-1] == ("1", "train"), "the fast loop is told to take the new body"
    body_version = store_of(settings).get("1", body.body.version)
    cache = store_of(settings).layout.version_embeddings(
        body_version.path, resolved_precision(settings.model.encode_precision, settings.model.device)
    )
    assert cache.is_dir() and body.current_version == first.current_version

    studio.annotate(20, segments[20]["codes"], user=1, when="3")
    second = run_round(settings, studio, queue=queue)
    head = store_of(settings).get("1", second.current_version)
    assert head.metadata["body"] == body.body.version and second.labeled == 13
    assert queue.requests.count(("1", "body")) == 1, "one new label is not enough for another body"
    unlabeled = set(studio.unlabeled_ids())
    on_unlabeled = [p for p in studio.predictions if p["task"] in unlabeled]
    by_version = {
        name: [p for p in written_by(studio, settings.server.model_dir, name) if p["task"] in unlabeled]
        for name in (first.current_version, second.current_version)
    }
    assert sorted(p["id"] for p in on_unlabeled) == sorted(p["id"] for ps in by_version.values() for p in ps)
    assert min(on_unlabeled, key=lambda p: p["score"]) in by_version[second.current_version], "served first"
    assert len(by_version[first.current_version]) > 0, "beyond the coders' reach the first head's places stay"
    loaded = store_of(settings).load(head)
    assert loaded.predict_proba([segments[0]["text"]]).shape == (1, len(loaded.codes))

    model_dir = settings.server.model_dir
    moved = model_dir.parent / f"{model_dir.name}-moved"
    model_dir.rename(moved)  # a new volume, a restored backup
    loaded = ModelStore(moved).load(ModelStore(moved).get("1", head.name))
    assert loaded.predict_proba([segments[0]["text"]]).shape == (1, len(loaded.codes))


@pytest.fixture
def encoded(monkeypatch):
    """How many texts the model encoded, call by call."""
    calls = []
    original = SetFitCodingModel.embed

    def counting(self, texts, precision="fp32"):
        calls.append(len(texts))
        return original(self, texts, precision)

    monkeypatch.setattr(SetFitCodingModel, "embed", counting)
    return calls


def test_the_pool_is_encoded_before_the_first_round_which_then_encodes_nothing(
    segments, settings, encoded, monkeypatch
):
    studio = FakeStudio(segments, annotated=4)
    state = run_round(settings, studio, kind="embed")
    distinct = len({s["text"] for s in segments})
    assert state.pool_encoded.body == "base" and state.pool_encoded.segments == len(segments)
    assert sum(encoded) == distinct and state.body.status is LaneStatus.IDLE and state.progress is None
    assert state.current_version is None, "encoding writes nothing to Label Studio"

    studio.add_task("A segment imported while coders were at their first ones.")
    studio.add_task("   ")  # a blank segment: nothing to encode, no code to suggest
    encoded.clear()
    run_round(settings, studio, kind="embed")
    assert encoded == [1], "only the new task"

    for task in range(4, 12):
        studio.annotate(task, segments[task]["codes"], user=1, when="2")
    encoded.clear()
    loaded = []
    monkeypatch.setattr(Bodies, "_model", lambda self, name, codes: loaded.append(name))
    first = run_round(settings, studio)
    assert first.current_version is not None and sum(encoded) == 0, "the first round only fits a head"
    assert loaded == [], "nor loads the body: the fast lane never holds its weights"
    head = store_of(settings).get("1", first.current_version)
    assert store_of(settings).load(head).predict_proba([segments[0]["text"]]).shape == (
        1,
        len(head.metadata["codes"]),
    )


def test_an_interrupted_pre_encoding_resumes_where_it_stopped(segments, settings, encoded, monkeypatch):
    monkeypatch.setattr("backend.storage.embeddings.ENCODE_CHUNK", 8)
    counting = SetFitCodingModel.embed

    def killed_after_one_chunk(self, texts, precision="fp32"):
        if encoded:
            raise MemoryError("killed")
        return counting(self, texts, precision)

    monkeypatch.setattr(SetFitCodingModel, "embed", killed_after_one_chunk)
    studio = FakeStudio(segments)
    failed = run_round(settings, studio, kind="embed")
    assert failed.body.status is LaneStatus.FAILED and failed.pool_encoded is None and encoded == [8]
    monkeypatch.setattr(SetFitCodingModel, "embed", counting)
    done = run_round(settings, studio, kind="embed")
    assert done.pool_encoded is not None
    assert sum(encoded) == len({s["text"] for s in segments}), "the first chunk was not encoded again"


def test_write_back_puts_the_queue_head_live_first_and_stops_for_newer_work(segments, settings):
    studio = FakeStudio(segments, annotated=12)
    served_with = []
    studio.serve_version = lambda project, version: served_with.append(len(studio.predictions))
    run_round(with_overrides(settings, write_first=5), studio)
    assert served_with == [5], "the switch comes right after the five most informative tasks"
    assert len(studio.predictions) == 24
    first_five = studio.predictions[:5]
    assert [p["score"] for p in first_five] == sorted(p["score"] for p in studio.predictions)[:5]


def test_a_version_goes_live_with_a_task_for_every_coder_and_newer_work_waits_for_as_many_again(
    segments, settings
):
    """Label Studio answers a coder "no more tasks" when every task with a current prediction is
    locked by another coder (the load test: 544 of 1,832 /next with 24 coders, versions going live
    with one task and stopped by the next round): six coders, so seven places before the switch and
    seven more before newer work may stop the head."""
    studio = FakeStudio(segments)
    for task in range(12):
        studio.annotate(task, segments[task]["codes"], user=1 + task % 6, when="1")
    served_with = []
    studio.serve_version = lambda project, version: served_with.append(len(studio.predictions))
    lanes = FileQueue(settings.server.model_dir)
    lanes.put("1", WorkKind.TRAIN)  # newer work waits throughout
    state = run_round(settings, studio, queue=RecordingQueue(lanes))  # WRITE_FIRST=1 by default
    assert served_with == [7], "one place per coder and one more, before the switch"
    assert state.complete is False and len(studio.predictions) == 14


def test_a_round_stops_writing_the_rest_of_its_head_for_another_projects_waiting_round(segments, settings):
    """Ten projects at their tenth annotation at once queued behind first rounds that held their
    worker slots for about 55 s, 30 s of it writing the rest of their heads: once the coders' floor
    and half its head are written (here the floor: 14 of 24), a round stops for another project's
    waiting round as it does for its own."""
    studio = FakeStudio(segments)
    for task in range(12):
        studio.annotate(task, segments[task]["codes"], user=1 + task % 6, when="1")
    asked = []
    others_wait = lambda: asked.append(len(studio.predictions)) or True  # noqa: E731
    project_work("1", settings, studio, RecordingQueue(), others_wait).run(WorkKind.TRAIN)
    assert state_of(settings).complete is False and len(studio.predictions) == 14
    assert asked == [14], "asked once the floor (beyond half the head) was written, not before"


def test_newer_work_waits_for_twice_what_coders_took_while_the_last_version_served(segments, settings):
    """Fast coders drain a version's current tasks before the next goes live: the head written
    before newer work may stop it grows with what they took since the last version."""
    studio = FakeStudio(segments, annotated=12)
    lanes = FileQueue(settings.server.model_dir)
    run_round(with_overrides(settings, write_head=6), studio)  # the next head's tasks are mostly new
    version = state_of(settings).current_version
    for task in range(12, 16):  # four tasks taken since
        studio.annotate(task, segments[task]["codes"], user=1, when="2")
    lanes.put("1", WorkKind.TRAIN)
    state = run_round(settings, studio, queue=RecordingQueue(lanes))
    assert state.current_version != version
    written = written_by(studio, settings.server.model_dir, state.current_version)
    # before the switch its two first places (one coder and one more); then two more; then 2 × 4
    assert state.complete is False and len(written) == 2 + 2 + 2 * 4
    for task in range(16, 20):  # four more taken, with a head of 4: the floor stops at the head ...
        studio.annotate(task, segments[task]["codes"], user=1, when="3")
    lanes.put("1", WorkKind.TRAIN)
    state = run_round(with_overrides(settings, write_head=4), studio, queue=RecordingQueue(lanes))
    written = written_by(studio, settings.server.model_dir, state.current_version)
    # ... and below it at the tasks not served yet: a rewrite of a served one adds none to serve
    assert state.complete is False and len(written) == 2, "its first places; the rest are served already"


def test_a_killed_body_round_is_noticed_and_another_asked_for(segments, settings):
    lanes = FileQueue(settings.server.model_dir)
    studio, queue = FakeStudio(segments, annotated=12), RecordingQueue(lanes)
    work = project_work("1", settings, studio, queue)
    states = StateStore(ProjectDir(settings.server.model_dir, "1"))
    states.update(lambda state: setattr(state.body, "status", LaneStatus.TRAINING))  # its process was killed
    with lanes.hold("1", Lane.BODY) as held:
        assert held
        work.on_idle.ask_if_due(12)
        assert queue.requests == [], "no second body while one is being fine-tuned"
    work.on_idle.ask_if_due(12)
    assert queue.requests == [("1", "body")]
    state = states.read()
    assert state.body.status is LaneStatus.FAILED and "without finishing" in state.body.error


def test_imported_tasks_are_predicted_once_after_the_round_that_follows_annotations(segments, settings):
    settings = with_overrides(settings, write_head=21)  # a head of 21: three of 24 tasks stay unwritten
    studio = FakeStudio(segments, annotated=12)
    run_round(settings, studio)
    unwritten = set(studio.unlabeled_ids()) - {p["task"] for p in studio.predictions}
    assert len(unwritten) == 3
    new = [studio.add_task(s["text"] + " (follow-up)") for s in segments[:2]]
    studio.annotate(12, segments[12]["codes"], user=1, when="2")

    version = run_round(settings, studio, kind="train").current_version
    assert not [p for p in studio.predictions if p["task"] in new], "a head refit ranks the kept listing"

    run_round(settings, studio, kind="predict")
    predicted = [p["task"] for p in written_by(studio, settings.server.model_dir, version)]
    assert sorted(p for p in predicted if p in new) == new
    studio.calls.clear()
    run_round(settings, studio, kind="predict")
    again = written_by(studio, settings.server.model_dir, version)
    assert [p["task"] for p in again] == predicted, "tasks are predicted once"
    assert not [call for call, _ in studio.calls if call in ("create", "update")]

    studio = FakeStudio(segments, annotated=12)
    settings = with_overrides(settings, model_dir=settings.server.model_dir / "second")
    run_round(settings, studio)
    run_round(settings, studio, kind="predict")
    assert not [p for p in studio.predictions if p["task"] in unwritten], (
        "tasks the version ranked beyond its head are left to the next round"
    )


def test_a_waiting_request_for_imported_tasks_does_not_stop_a_write_back(segments, settings):
    """Only annotations make a newer version; a 'predict' request that waits must not leave this
    version incomplete (nothing else would write its rest)."""
    lanes = FileQueue(settings.server.model_dir)
    lanes.put("1", WorkKind.PREDICT)
    studio = FakeStudio(segments, annotated=12)
    state = run_round(with_overrides(settings, write_first=5), studio, queue=RecordingQueue(lanes))
    assert state.complete is True and len(studio.predictions) == 24
    lanes.put("1", WorkKind.TRAIN)
    studio.annotate(12, segments[12]["codes"], user=1, when="2")
    state = run_round(with_overrides(settings, write_first=5), studio, queue=RecordingQueue(lanes))
    assert state.complete is False, "a waiting round after annotations does stop it"


def test_a_round_is_tried_again_while_label_studio_restarts(segments, settings, monkeypatch):
    from backend.worker import wiring

    monkeypatch.setattr(wiring, "RETRY_SECONDS", (0.01, 0.01))
    studio = FakeStudio(segments, annotated=12)
    answers = iter([StudioError("Label Studio could not list tasks (ConnectError)")] * 2)
    real_config = studio.label_config

    def restarting(project):
        failure = next(answers, None)
        if failure:
            raise failure
        return real_config(project)

    studio.label_config = restarting
    state = run_round(settings, studio)
    assert state.fast.status is LaneStatus.IDLE and state.current_version, "the third try got through"
    refused = FakeStudio(segments, annotated=12)
    refused.label_config = lambda project: (_ for _ in ()).throw(StudioError("HTTP 403", status=403))
    state = run_round(with_overrides(settings, model_dir=settings.server.model_dir / "b"), refused)
    assert state.fast.status is LaneStatus.FAILED and "403" in state.fast.error, "a refusal is not retried"


def webhook_brings(settings, studio, task_id):
    """The webhook of the task's newest annotation, as the server keeps it (server/protocol.py)."""
    task = studio.all[task_id]
    event = AnnotationEvent(task_id=task_id, task_data=task.data, annotation=task.annotations[-1])
    Inbox(ProjectDir(settings.server.model_dir, "1").inbox).put(event)


def test_the_fast_loop_trains_on_what_the_webhook_brought_and_reads_everything_once_live(segments, settings):
    # the writes before the switch count the last version's first places this one has not (as above)
    settings = with_overrides(settings, features="embeddings")
    studio, queue = FakeStudio(segments, annotated=12), RecordingQueue()
    work = project_work("1", settings, studio, queue)  # one worker, lingering between annotations
    work.run(WorkKind.TRAIN)
    studio.annotate(20, segments[20]["codes"], user=1, when="3")
    webhook_brings(settings, studio, 20)
    studio.calls.clear()
    work.run(WorkKind.TRAIN)
    state = state_of(settings)
    assert state.labeled == 13 and state.fast.status is LaneStatus.IDLE
    calls = [call for call, _ in studio.calls]
    # one coder: two places (theirs and one for a coder new to the project) before anything is read;
    # the project serves the one name already: no switch
    assert calls[:2] == ["update", "update"] and "serve" not in calls, "the new queue head is live first"
    assert calls.count("read labels") == 1, "then the full read reconciles"
    writes = [n for n, call in enumerate(calls) if call in ("update", "create")]
    assert calls.index("read labels") > max(writes), "once the head is written"
    assert ("1", "train") not in queue.requests, "it found nothing the webhook did not bring"


def label_reads_first(studio: FakeStudio) -> bool:
    """Whether a round read every annotation before it wrote its queue head (no shortcut)."""
    calls = [call for call, _ in studio.calls]
    return calls.index("read labels") < min(n for n, call in enumerate(calls) if call in ("update", "create"))


def test_a_worker_back_at_a_project_reads_only_what_came_since_unless_another_took_it(segments, settings):
    """A worker process moves between projects (Scheduler.work_in_turn) and its lane's wiring is new
    each time; what it read at a project stays in its memory (KeptLabels), valid while no other
    process took the project's events."""
    settings = with_overrides(settings, features="embeddings")
    studio, queue = FakeStudio(segments, annotated=12), RecordingQueue()
    mine, another = KeptLabels(), KeptLabels()
    project_work("1", settings, studio, queue, kept=mine).run(WorkKind.TRAIN)
    studio.annotate(20, segments[20]["codes"], user=1, when="3")
    webhook_brings(settings, studio, 20)
    studio.calls.clear()
    project_work("1", settings, studio, queue, kept=mine).run(WorkKind.TRAIN)  # back after a move
    assert state_of(settings).labeled == 13
    assert not label_reads_first(studio), "it trained on what it kept plus the webhook's annotation"

    studio.annotate(21, segments[21]["codes"], user=1, when="4")
    webhook_brings(settings, studio, 21)
    project_work("1", settings, studio, queue, kept=another).run(WorkKind.TRAIN)  # another process
    studio.annotate(22, segments[22]["codes"], user=1, when="5")
    webhook_brings(settings, studio, 22)
    studio.calls.clear()
    project_work("1", settings, studio, queue, kept=mine).run(WorkKind.TRAIN)
    assert label_reads_first(studio), "what it kept lacks the annotation another process took"
    assert state_of(settings).labeled == 15


def a_webhook_lost_after_a_round(segments, settings):
    """A project's first round, then two annotations of which only the second's webhook came."""
    studio, queue = FakeStudio(segments, annotated=12), RecordingQueue()
    work = project_work("1", settings, studio, queue)
    work.run(WorkKind.TRAIN)
    studio.annotate(20, segments[20]["codes"], user=1, when="3")  # its webhook timed out
    studio.annotate(21, segments[21]["codes"], user=1, when="4")
    webhook_brings(settings, studio, 21)
    return queue, work


def test_a_lost_webhook_costs_a_round_never_a_label(segments, settings, caplog):
    caplog.set_level(logging.INFO, logger="backend.worker.labels")
    queue, work = a_webhook_lost_after_a_round(segments, settings)
    work.run(WorkKind.TRAIN)
    assert state_of(settings).labeled == 13, "the shortcut knew only what the webhook brought"
    assert ("1", "train") in queue.requests, "the full read found the lost annotation: another round"
    assert "holds 1 annotated task(s) this round did not have" in caplog.text
    work.run(WorkKind.TRAIN)
    state = state_of(settings)
    assert state.labeled == 14
    assert store_of(settings).get("1", state.current_version).metadata["n_labeled"] == 14


@pytest.mark.parametrize("change", ["deleted", "new coder"])
def test_changes_the_shortcut_cannot_follow_are_read_in_full_first(segments, settings, change):
    studio, queue = FakeStudio(segments, annotated=12), RecordingQueue()
    work = project_work("1", settings, studio, queue)
    work.run(WorkKind.TRAIN)
    studio.annotate(20, segments[20]["codes"], user=3 if change == "new coder" else 1, when="3")
    inbox = Inbox(ProjectDir(settings.server.model_dir, "1").inbox)
    if change == "deleted":
        inbox.put(AnnotationEvent(task_id=0, task_data={}))
    else:
        webhook_brings(settings, studio, 20)
    studio.calls.clear()
    work.run(WorkKind.TRAIN)
    assert studio.calls[0] == ("read labels", 13) and state_of(settings).labeled == 13
    assert [call for call, _ in studio.calls].count("read labels") == 1, "read once: no reconcile needed"


def test_a_round_whose_successor_already_waits_leaves_the_reconciling_to_it(segments, settings):
    lanes = FileQueue(settings.server.model_dir)
    studio, queue = FakeStudio(segments, annotated=12), RecordingQueue(lanes)
    work = project_work("1", settings, studio, queue)
    work.run(WorkKind.TRAIN)
    studio.annotate(20, segments[20]["codes"], user=1, when="3")
    webhook_brings(settings, studio, 20)
    lanes.put("1", WorkKind.TRAIN)  # the next annotation came while this round trained
    studio.calls.clear()
    work.run(WorkKind.TRAIN)
    assert state_of(settings).labeled == 13
    assert "read labels" not in [call for call, _ in studio.calls], "the waiting round reconciles"
    assert lanes.take("1", Lane.FAST) is WorkKind.TRAIN
    work.run(WorkKind.TRAIN)
    assert [call for call, _ in studio.calls].count("read labels") == 1


def test_when_the_next_annotation_waits_the_rounds_record_waits_for_a_pause(segments, settings):
    """The quality estimate and MLflow run of a round that finds the next one waiting are made by the
    first round that finds none, oldest first: a coder who submits at once does not wait for them."""
    lanes = FileQueue(settings.server.model_dir)
    studio = FakeStudio(segments, annotated=12)
    work = project_work("1", settings, studio, RecordingQueue(lanes))
    work.run(WorkKind.TRAIN)  # nothing waits: recorded before the round ends
    assert [f.labeled for f in state_of(settings).figures] == [12]

    studio.annotate(12, segments[12]["codes"], user=1, when="2")
    webhook_brings(settings, studio, 12)
    lanes.put("1", WorkKind.TRAIN)  # the next annotation's round waits
    work.run(WorkKind.TRAIN)
    live = state_of(settings)
    assert live.labeled == 13 and [f.labeled for f in live.figures] == [12], "its record waits"
    assert live.fast.status is LaneStatus.IDLE

    studio.annotate(13, segments[13]["codes"], user=1, when="3")
    webhook_brings(settings, studio, 13)
    assert lanes.take("1", Lane.FAST) is WorkKind.TRAIN  # taken, as the runner does; nothing else waits
    work.run(WorkKind.TRAIN)
    figures = state_of(settings).figures
    assert [f.labeled for f in figures] == [12, 13, 14], "both, in order"
    assert figures[1].changed_share is not None, "with the stopping signal against the round before"


def test_a_rounds_mlflow_run_yields_to_an_annotation_that_came_during_its_figures(
    segments, settings, monkeypatch
):
    """The first MLflow record in a process imports MLflow and opens its store: seconds that a coder
    who submitted while the round computed its figures need not wait for."""
    from backend.worker.monitoring import Monitor

    lanes = FileQueue(settings.server.model_dir)
    studio = FakeStudio(segments, annotated=12)
    work = project_work("1", settings, studio, RecordingQueue(lanes))
    quality = Monitor.quality

    def annotation_comes_meanwhile(monitor, *args):
        lanes.put("1", WorkKind.TRAIN)
        return quality(monitor, *args)

    monkeypatch.setattr(Monitor, "quality", annotation_comes_meanwhile)
    work.run(WorkKind.TRAIN)
    [figures] = state_of(settings).figures
    assert figures.labeled == 12 and figures.f1, "the figures are made"
    assert figures.mlflow_run is None, "the run waits"

    monkeypatch.setattr(Monitor, "quality", quality)
    studio.annotate(12, segments[12]["codes"], user=1, when="2")
    webhook_brings(settings, studio, 12)
    assert lanes.take("1", Lane.FAST) is WorkKind.TRAIN
    work.run(WorkKind.TRAIN)
    assert [bool(f.mlflow_run) for f in state_of(settings).figures] == [True, True], "both, in order"


def test_the_pool_pre_encoding_prepares_the_mlflow_experiment(segments, settings):
    import mlflow

    work = project_work("1", settings, FakeStudio(segments, annotated=0), RecordingQueue())
    work.run(WorkKind.EMBED)
    client = mlflow.MlflowClient(
        tracking_uri=f"sqlite:///{settings.server.model_dir.resolve() / 'mlflow.db'}"
    )
    assert client.get_experiment_by_name("label-studio-project-1") is not None


def test_the_pool_pre_encoding_fits_the_lexicon_the_first_round_takes(segments, settings, caplog):
    """FEATURES=tfidf+embeddings (the default): the first round after the tenth annotation loads the
    lexicon fitted in the background, it does not fit one while coders wait."""
    studio = FakeStudio(segments, annotated=0)
    with caplog.at_level(logging.INFO, logger="backend.storage.lexicon"):
        run_round(settings, studio, kind=WorkKind.EMBED.value)
        lexicon = store_of(settings).layout.project("1").lexicon
        fitted = write_identity(lexicon)
        assert fitted is not None, "fitted with the encoding"
        for n, segment in enumerate(segments[:12]):
            studio.annotate(n, segment["codes"], user=1, when="1")
        assert run_round(settings, studio).current_version
    assert write_identity(lexicon) == fitted, "the round took it as it was"
    assert len([r for r in caplog.records if "fitted the TF-IDF lexicon" in r.getMessage()]) == 1


def test_the_pool_pre_encoding_of_a_project_with_no_words_still_records_the_pool(settings, caplog):
    """Numbers alone give TF-IDF no term: the lexicon is not fitted, the pool is encoded all the same."""
    studio = FakeStudio([{"text": str(n), "codes": []} for n in range(3)])
    with caplog.at_level(logging.WARNING):
        state = run_round(settings, studio, kind=WorkKind.EMBED.value)
    assert state.pool_encoded.segments == 3 and state.fast.error is None and state.body.error is None
    assert "the TF-IDF lexicon was not fitted" in caplog.text


def test_a_round_whose_head_fails_to_be_written_still_reconciles(segments, settings, monkeypatch):
    """The version is live: a label a lost webhook did not bring still gets its round."""
    queue, work = a_webhook_lost_after_a_round(segments, settings)

    def refused(publisher, live_round):
        raise StudioError("Label Studio refused the rest", 400)

    monkeypatch.setattr(Publisher, "write_rest", refused)
    work.run(WorkKind.TRAIN)
    assert state_of(settings).fast.status is LaneStatus.FAILED
    assert ("1", "train") in queue.requests, "the full read found the lost annotation: another round"


def test_the_stopping_signal_survives_a_body_saved_while_the_round_writes_back(segments, settings):
    """The body lane's save prunes the versions no longer in use: once this round's version is live,
    that includes the one it replaced, whose decisions the stopping signal compares against."""
    studio = FakeStudio(segments, annotated=12)
    run_round(settings, studio)
    store, update = store_of(settings), studio.update_prediction
    replaced = state_of(settings).current_version

    def body_lane_saves_once_the_round_is_live(project, prediction_id, prediction):
        serving = state_of(settings).current_version
        if serving != replaced and store.has("1", replaced):
            model = store.load(store.get("1", serving))
            store.save("1", model, n_labeled=12, training_seconds=1, config={}, keep_also=[serving])
        update(project, prediction_id, prediction)

    studio.update_prediction = body_lane_saves_once_the_round_is_live
    studio.annotate(12, segments[12]["codes"], user=1, when="2")
    second = run_round(settings, studio)
    assert not store.has("1", replaced), "pruned while the rest was written"
    assert second.monitoring.stopping["tasks_compared"] == 23


FAST_ROUND_ALONE = """
import pickle, sys
from backend.queue.work import WorkKind
from backend.worker.wiring import project_work
from tests.fakes import RecordingQueue

settings, studio = pickle.load(open(sys.argv[1], "rb"))
work = project_work("1", settings, studio, RecordingQueue())
work.run(WorkKind.TRAIN)
studio.annotate(12, ["physical_health"], user=1, when="3")
work.run(WorkKind.TRAIN)  # with a version before it: the stopping signal too
print(sorted(name for name in ("torch", "small_text", "setfit", "transformers") if name in sys.modules))
"""


def test_a_fast_lane_round_after_the_pre_encoding_never_imports_torch(segments, settings, tmp_path):
    """torch costs a fast lane 0.35 GB and seconds. With the pool encoded it needs none: not to
    choose the cache (the lane that encoded the pool recorded the precision), nor to fit, rank or
    compute the stopping signal (small-text's import would bring torch)."""
    studio = FakeStudio(segments, annotated=4)
    encoded = run_round(settings, studio, kind="embed")
    assert encoded.encoded_in in ("fp32", "bf16")
    for task in range(4, 12):
        studio.annotate(task, segments[task]["codes"], user=1, when="2")
    (tmp_path / "round.pickle").write_bytes(pickle.dumps((settings, studio)))
    command = [sys.executable, "-c", FAST_ROUND_ALONE, str(tmp_path / "round.pickle")]
    printed = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    assert printed.stdout.strip().splitlines()[-1] == "[]"
    assert state_of(settings).monitoring.stopping is not None, "both rounds made their versions and records"


def test_tfidf_beside_embeddings_runs_the_fast_loop_saves_its_lexicon_and_predicts_imports(
    segments, settings
):
    """FEATURES=tfidf+embeddings: the lexicon is fitted on every segment (no labels), saved with each
    version and loaded with it; imported tasks get rows of the same width, and a project grown by
    more than TFIDF_REFIT_GROWTH gets a lexicon fitted again (and a head on it)."""
    from backend.learning.features import Lexicon
    from backend.learning.setfit_model import LEXICON_FILE

    settings = with_overrides(settings, features="tfidf+embeddings", setfit_max_steps=0)
    studio = FakeStudio(segments, annotated=12)
    first = run_round(settings, studio)
    version = store_of(settings).get("1", first.current_version)
    assert (version.path / LEXICON_FILE).is_file()
    loaded = store_of(settings).load(version)  # as /predict after a restart
    everything = {task.data["text"] for task in studio.all.values()}
    assert loaded.lexicon.fitted_on == len(everything), "every segment, labeled or not"
    assert loaded.lexicon.vectorizer.vocabulary_ == Lexicon.fit(list(everything)).vectorizer.vocabulary_
    proba = loaded.predict_proba([segments[0]["text"], "asthma, a word no segment has"])
    assert proba.shape == (2, len(loaded.codes))
    assert written_by(studio, settings.server.model_dir, version.name) == studio.predictions

    new = [studio.add_task(f"follow-up {i}: my asthma is worse at night") for i in range(2)]
    run_round(settings, studio, kind="predict")
    assert sorted(p["task"] for p in studio.predictions if p["task"] in new) == new

    for i in range(5):  # 36 + 2 + 5 segments: more than a tenth beyond what the lexicon saw
        studio.add_task(f"new topic {i}: the inhaler helps")
    run_round(settings, studio, kind="predict")  # TASKS_CREATED: they join the pool
    studio.annotate(12, segments[12]["codes"], user=1, when="2")
    second = run_round(settings, studio)
    refitted = store_of(settings).load(store_of(settings).get("1", second.current_version)).lexicon
    assert refitted.fitted_on == len(everything) + 7 and "inhaler" in refitted.vectorizer.vocabulary_
