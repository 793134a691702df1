"""The record of the tasks Label Studio may have served coders (worker/front.py)."""

from datetime import UTC, datetime, timedelta

from backend.storage.state import FrontTask
from backend.worker.front import LOCK, REMEMBERED, current, remember

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def entry(task: int, ago: timedelta) -> FrontTask:
    return FrontTask(task=task, at=NOW - ago)


def test_a_live_versions_first_places_come_first_and_a_labeled_or_unlocked_task_is_dropped():
    before = [entry(1, timedelta(minutes=5)), entry(2, timedelta(minutes=9)), entry(3, LOCK * 1.01)]
    after = remember(before, new=[7, 2], labeled={1}, now=NOW)
    assert [e.task for e in after] == [7, 2], (
        "2 is back at the front (once, as new); 1 is labeled; 3 unlocked"
    )
    assert {e.at for e in after} == {NOW}
    assert [e.task for e in current(before, NOW)] == [1, 2], "a lock lasts a day"


def test_the_record_holds_at_most_remembered_tasks_the_newest():
    record: list[FrontTask] = []
    for version in range(REMEMBERED):
        record = remember(record, new=[2 * version, 2 * version + 1], labeled=(), now=NOW)
    assert len(record) == REMEMBERED
    newest = 2 * (REMEMBERED - 1)
    assert [e.task for e in record[:4]] == [newest, newest + 1, newest - 2, newest - 1]
