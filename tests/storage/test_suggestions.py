"""The log of our prediction writes: what a coder was shown, and when, after the prediction changed."""

import json

from backend.storage.layout import ProjectDir
from backend.storage.prediction_ids import PredictionIds
from backend.storage.suggestions import KEEP_PER_TASK, SuggestionLog, choices_of
from backend.studio.task_predictions import TaskPredictions
from backend.studio.writeback import go_live
from tests.fakes import FakeStudio


def prediction(task: int, version: str, *choices: str) -> dict:
    evidence = {"from_name": "evidence", "type": "labels", "value": {"start": 0, "end": 3, "labels": ["a"]}}
    codes = {"from_name": "codes", "to_name": "text", "type": "choices", "value": {"choices": list(choices)}}
    return {"task": task, "model_version": version, "score": 0.1, "result": [codes, evidence]}


def codes_of(result):
    """A stand-in for CodingScheme.codes_of: the choices of the `codes` control, upper-cased."""
    return [c.upper() for item in result if item["from_name"] == "codes" for c in item["value"]["choices"]]


def test_each_write_is_kept_with_its_prediction_version_and_choices_oldest_first(tmp_path):
    directory = ProjectDir(tmp_path, "1")
    log = SuggestionLog(directory)
    log.add(7, 70, prediction(7, "v1", "a"))
    log.add(7, 70, prediction(7, "v2", "a", "b"))
    assert not directory.suggestions.exists(), "nothing is written before the step's save"
    log.save()
    (first, second) = SuggestionLog(directory).read(codes_of)[7]
    assert (first.prediction, first.version, first.codes) == (70, "v1", frozenset("A"))
    assert second.version == "v2" and second.codes == frozenset("AB") and first.at <= second.at
    assert choices_of(prediction(7, "v1", "a")) == {"codes": ["a"]}, "evidence regions are left out"


def test_two_lanes_saving_merge_and_a_task_keeps_its_last_writes_only(tmp_path):
    directory = ProjectDir(tmp_path, "1")
    fast, background = SuggestionLog(directory), SuggestionLog(directory)
    fast.add(1, 10, prediction(1, "v1", "a"))
    background.add(2, 20, prediction(2, "v0-codebook", "b"))
    fast.save()
    background.save()
    assert set(SuggestionLog(directory).read(codes_of)) == {1, 2}
    for n in range(KEEP_PER_TASK + 5):
        fast.add(1, 10, prediction(1, f"v{n + 2}", "a"))
    fast.save()
    kept = SuggestionLog(directory).read(codes_of)[1]
    assert len(kept) == KEEP_PER_TASK and kept[-1].version == f"v{KEEP_PER_TASK + 6}"


def test_a_damaged_log_reads_as_empty(tmp_path):
    directory = ProjectDir(tmp_path, "1")
    directory.path.mkdir(parents=True)
    directory.suggestions.write_text("{not json")
    assert SuggestionLog(directory).read(codes_of) == {}


def test_writeback_logs_each_create_and_each_update_in_place_under_the_prediction_id(tmp_path):
    studio = FakeStudio()
    task = studio.add_task("Ich schlafe schlecht.")
    directory = ProjectDir(tmp_path, "1")
    target = TaskPredictions(studio, 1, PredictionIds(directory), SuggestionLog(directory))
    go_live(target, "v1-20260101000000", [prediction(task, "v1-20260101000000", "a")], first=1)
    go_live(target, "v2-20260101000001", [prediction(task, "v2-20260101000001", "b")], first=1)
    (held,) = studio.predictions
    writes = SuggestionLog(directory).read(codes_of)[task]
    assert [(w.prediction, w.codes) for w in writes] == [(held["id"], {"A"}), (held["id"], {"B"})]
    assert json.loads(directory.suggestions.read_text())["schema_version"] == 1
