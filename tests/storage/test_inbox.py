"""The inbox of annotation events: taken in arrival order, and never trusted beyond what it can read."""

from backend.storage import inbox as inbox_module
from backend.storage.inbox import AnnotationEvent, Inbox


def event(task_id: int, annotation_id: int) -> AnnotationEvent:
    annotation = {"id": annotation_id, "result": [], "completed_by": 1}
    return AnnotationEvent(task_id=task_id, task_data={"text": f"segment {task_id}"}, annotation=annotation)


def test_events_are_taken_once_in_the_order_they_arrived(tmp_path):
    inbox = Inbox(tmp_path / "inbox")
    assert inbox.take() == [], "no inbox yet: nothing arrived"
    for n in (3, 1, 2):
        assert inbox.put(event(n, 10 + n))
    assert [e.task_id for e in inbox.take()] == [3, 1, 2]
    assert inbox.take() == []


def test_an_unreadable_event_means_read_everything_and_is_gone(tmp_path):
    inbox = Inbox(tmp_path / "inbox")
    inbox.put(event(1, 11))
    (tmp_path / "inbox" / "1-0.json").write_text("{truncated")
    assert inbox.take() is None
    assert list((tmp_path / "inbox").iterdir()) == []


def test_a_full_inbox_keeps_no_more_and_its_round_reads_everything(tmp_path, monkeypatch):
    monkeypatch.setattr(inbox_module, "MAX_EVENTS", 3)
    inbox = Inbox(tmp_path / "inbox")
    assert [inbox.put(event(n, n)) for n in range(4)] == [True, True, True, False]
    assert inbox.take() is None
    assert inbox.take() == [] and inbox.put(event(5, 5))


def test_an_event_that_cannot_be_written_is_only_a_lost_shortcut(tmp_path):
    (tmp_path / "inbox").write_text("a file where the directory should be")
    assert Inbox(tmp_path / "inbox").put(event(1, 1)) is False
