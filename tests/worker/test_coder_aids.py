"""What coders see beyond the codes: evidence spans in a round's queue head, and the codebook's
queue before the first round (against the in-memory Label Studio of tests/fakes.py)."""

import numpy as np
import pytest

from backend.config import with_overrides
from backend.domain.scheme import parse_label_config
from backend.domain.versions import LIVE
from backend.learning.base import CodingModel
from backend.learning.options import StrategyOptions
from backend.queue.work import WorkKind
from backend.resources import label_config
from backend.storage.layout import ProjectDir
from backend.storage.ranked_pool import RankedPool
from backend.storage.state import StateStore
from backend.worker.ranking import Queue, Ranker, Scored
from tests.fakes import FakeStudio, RecordingQueue
from tests.helpers import written_by
from tests.worker.test_jobs import run_round, store_of

EVIDENCE_FORM = label_config("interview_coding_evidence")


@pytest.fixture
def settings(settings):
    """The jobs' settings (tests/worker/conftest.py), with evidence in a short queue head."""
    return with_overrides(settings, evidence_tasks=3, write_first=1, write_head=5)


def regions(prediction: dict) -> list[dict]:
    return [r for r in prediction["result"] if r["type"] == "labels"]


@pytest.mark.parametrize("features", ["embeddings", "tfidf+embeddings"])
def test_a_round_marks_the_evidence_of_the_queue_heads_suggested_codes(segments, settings, features):
    studio = FakeStudio(segments, annotated=12, config=EVIDENCE_FORM)
    state = run_round(with_overrides(settings, features=features), studio)
    written = written_by(studio, settings.server.model_dir, state.current_version)
    texts = {task.id: task.data["text"] for task in studio.all.values()}
    marked = [p for p in written if regions(p)]
    assert marked, "the queue head has evidence"
    assert all(written.index(p) < 3 for p in marked), "only EVIDENCE_TASKS tasks: the first written"
    for prediction in marked:
        chosen = {c for r in prediction["result"] if r["type"] == "choices" for c in r["value"]["choices"]}
        for region in regions(prediction):
            value = region["value"]
            assert texts[prediction["task"]][value["start"] : value["end"]] == value["text"]
            assert value["labels"][0] in chosen and region["from_name"] == "evidence"


class PainModel(CodingModel):
    """Physical health wherever a text says "pain": a stand-in whose evidence is known."""

    kind = "pain"

    def _proba(self, texts: list[str]) -> np.ndarray:
        proba = np.full((len(texts), len(self.codes)), 0.02)
        proba[:, 0] = [0.95 if "pain" in text else 0.05 for text in texts]
        return proba

    def _save_weights(self, directory) -> None:
        raise NotImplementedError


def test_a_queue_is_written_in_its_order_with_evidence_on_its_first_places_and_none_on_the_blind():
    scheme = parse_label_config(EVIDENCE_FORM)
    model = PainModel(scheme.codes, [0.5] * len(scheme.codes))
    ids = list(range(100, 160))
    texts = [f"Segment {task}: I had a lot of pain, but the weather was fine." for task in ids]
    places = [50, 0, *range(1, 50), *range(51, 60)]  # 100 at place 50; 101 leads, but is blind
    proba = np.full((len(ids), len(scheme.codes)), 0.02)
    proba[:, 0] = 0.5 + 0.45 * np.asarray(places) / len(ids)  # less sure the later the place
    scored = Scored(texts, proba, np.asarray(ids), model.predict_proba)
    ranker, against = Ranker(StrategyOptions("entropy", 0), 3), RankedPool.empty(len(scheme.codes))
    ranked = ranker.predictions(scheme, model, "v2", scored, against, queue=Queue(blind=(101,), every=2))
    written = list(ranked.predictions)
    assert [p["task"] for p in written[:4]] == [102, 101, 103, 104], "the blind task at every second place"
    assert [p["task"] for p in written].index(100) == 50
    assert [p["score"] for p in written] == sorted(p["score"] for p in written), "written in queue order"
    assert [p["task"] for p in written if regions(p)] == [102, 103], (
        "evidence on the first 3 places but the blind"
    )
    assert [r["value"]["text"] for r in regions(written[0])] == ["I had a lot of pain,"]
    assert not regions(written[1]) and all(not r["value"]["choices"] for r in written[1]["result"]), (
        "a validation task shows neither codes nor evidence"
    )


def test_a_form_without_an_evidence_tag_gets_no_regions(segments, settings):
    studio = FakeStudio(segments, annotated=12)
    run_round(settings, studio)
    assert studio.predictions and not any(regions(p) for p in studio.predictions)


def test_the_codebook_orders_the_queue_before_the_first_round_which_replaces_it(segments, settings):
    settings = with_overrides(settings, cold_start="codebook")
    studio = FakeStudio(segments, annotated=4)
    queue = RecordingQueue()
    state = run_round(settings, studio, kind="embed", queue=queue)
    start = state.codebook_start
    assert start is not None and start.version.startswith("v0-codebook-") and state.current_version is None
    assert studio.served == [LIVE] and start.tasks == len(studio.unlabeled_ids())
    written = written_by(studio, settings.server.model_dir, start.version)
    assert len(written) == 5 and set(p["task"] for p in written) <= set(studio.unlabeled_ids()), "its head"
    scores = [p["score"] for p in written]
    assert scores == sorted(scores) and len(set(scores)) == len(scores), "written in queue order"
    for task in range(4, 12):
        studio.annotate(task, segments[task]["codes"], user=1, when="2")
    first = run_round(settings, studio, queue=queue)
    assert (
        studio.served == [LIVE]
        and len(written_by(studio, settings.server.model_dir, first.current_version)) == 5
    )
    assert studio.most_per_task() == 1, (
        "the round writes over the codebook's predictions it shares tasks with"
    )
    head = {p["task"] for p in written_by(studio, settings.server.model_dir, first.current_version)}
    codebook = [t for t in studio.queue() if t not in head]
    assert set(studio.queue()[:5]) == head and codebook, (
        "the round's head is served first, the codebook's tasks outside it after it"
    )


@pytest.mark.parametrize("cold_start", ["none", "codebook"])
def test_no_codebook_queue_without_cold_start_or_once_a_model_serves(segments, settings, cold_start):
    settings = with_overrides(settings, cold_start=cold_start)
    studio = FakeStudio(segments, annotated=12)
    if cold_start == "codebook":
        run_round(settings, studio)  # a model serves
    served = list(studio.served)
    state = run_round(settings, studio, kind="embed")
    assert state.codebook_start is None and studio.served == served


def test_a_form_without_hints_has_no_codebook_queue(segments, settings):
    settings = with_overrides(settings, cold_start="codebook")
    plain = label_config("interview_coding").replace("hint=", "data-hint=")
    studio = FakeStudio(segments, annotated=4, config=plain)
    assert run_round(settings, studio, kind=WorkKind.EMBED.value).codebook_start is None
    assert studio.served == []


def test_a_fine_tuned_body_is_judged_on_held_out_segments_and_kept_only_if_it_wins(
    segments, settings, monkeypatch
):
    """From 32 labeled: the verdict is recorded either way; a body that loses is not saved, and
    heads that were on an earlier body go back to the base body."""
    from backend.learning.body_choice import BodyVerdict

    studio = FakeStudio(segments, annotated=34)
    queue = RecordingQueue()
    judged = run_round(settings, studio, kind="body", queue=queue)
    choice = judged.body.choice
    assert choice is not None and choice.held_out == 9 and 0 <= choice.base_f1 <= 1
    assert (judged.body.version is not None) == choice.kept and judged.body.labeled == 34

    monkeypatch.setattr("backend.worker.jobs.body.judge_bodies", lambda *args: BodyVerdict(0.5, 0.6, 9, -0.1))
    if judged.body.version is None:  # an earlier body to go back from
        run_round(with_overrides(settings, body_selection="off"), studio, kind="body", queue=queue)
    versions = len(store_of(settings).versions("1"))
    queue.requests.clear()
    lost = run_round(settings, studio, kind="body", queue=queue)
    assert lost.body.version is None and lost.body.choice.kept is False and lost.body.choice.base_f1 == 0.6
    assert len(store_of(settings).versions("1")) == versions, "the losing body is not saved"
    assert ("1", "train") in queue.requests, "heads go back to the base body"
    from backend.worker.wiring import project_work

    policy = project_work("1", settings, studio, queue).on_idle
    assert not policy.is_due(35), "a body that lost counts: the next one after BODY_RETRAIN_EVERY more"
    assert policy.is_due(34 + settings.loop.body_retrain_every)


def test_with_two_coders_the_body_is_judged_across_coders_named_as_shown(segments, settings):
    studio = FakeStudio(segments, annotated=34)
    for task in range(34):
        studio.annotate(task, segments[task]["codes"][:1], user=2, when="2")  # B codes fewer codes
    judged = run_round(settings, studio, kind="body", queue=RecordingQueue())
    choice = judged.body.choice
    assert len(choice.by_coder) == 2 and all(name.startswith("coder-") for name in choice.by_coder)
    assert {figures.held_out for figures in choice.by_coder.values()} == {choice.held_out}
    assert choice.across_coders == 2, "heads fit on each coder's codes, scored on the other's"
    assert choice.kept == (choice.lower > 0) and choice.lower <= choice.fine_tuned_f1 - choice.base_f1 + 1e-9
    assert "example.org" not in judged.model_dump_json(), "coders are shown by pseudonym"


def test_no_codebook_queue_while_a_models_round_is_at_work(segments, settings):
    """The round is about to switch Label Studio to its version: the codebook must not switch after."""
    from backend.storage.state import LaneStatus

    settings = with_overrides(settings, cold_start="codebook")
    StateStore(ProjectDir(settings.server.model_dir, "1")).update(
        lambda state: setattr(state.fast, "status", LaneStatus.TRAINING)
    )
    studio = FakeStudio(segments, annotated=4)
    assert run_round(settings, studio, kind="embed").codebook_start is None and studio.served == []
