"""Progress of long steps: recorded in the state (throttled), cleared when the round ends."""

from backend.storage.layout import ProjectDir
from backend.storage.prediction_ids import PredictionIds
from backend.storage.state import StateStore
from backend.studio.task_predictions import TaskPredictions
from backend.studio.writeback import WritePlan, go_live, write_rest
from backend.worker.progress import ProgressReporter
from tests.fakes import FakeStudio


def test_progress_is_recorded_at_most_once_a_second_and_always_at_the_end(tmp_path):
    states = StateStore(ProjectDir(tmp_path, "1"))
    reporter = ProgressReporter("1", states, every=3600)
    reporter.encoding(512, 2000)
    first = states.read().progress
    reporter.encoding(1024, 2000)  # within the throttle: not written
    assert states.read().progress == first and first.done == 512 and first.stage == "encoding"
    reporter.encoding(2000, 2000)  # the end of a step is always written
    assert states.read().progress.done == 2000
    reporter.writing(100, 9000)  # a new step starts its own clock
    progress = states.read().progress
    assert progress.stage == "writing" and progress.total == 9000
    reporter.done()
    assert states.read().progress is None


def test_write_back_reports_each_prediction_of_the_head(tmp_path):
    seen = []
    predictions = [{"task": i, "score": i / 1200, "model_version": "v1-20261201000000"} for i in range(1200)]
    studio = FakeStudio()
    for i in range(1200):
        studio.add_task(f"segment {i}")
    target = TaskPredictions(studio, 1, PredictionIds(ProjectDir(tmp_path, "1")))
    live = go_live(target, "v1-20261201000000", predictions, first=1)
    write_rest(
        target,
        live,
        WritePlan(first=1, head=100),
        on_progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[0] == (1, 100) and (50, 100) in seen and seen[-1] == (100, 100)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
