"""The inbox of annotation events: taken in arrival order, and never trusted beyond what it can read."""

from backend.storage import inbox as inbox_module
from backend.storage.inbox import ANNOTATION_KEYS, BLOCK, AnnotationEvent, Inbox, Inboxes
from backend.storage.layout import StoreLayout


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


def test_the_inbox_knows_who_took_its_events_last(tmp_path):
    inbox = Inbox(tmp_path / "inbox")
    assert not inbox.taken_last_by("a"), "nobody took anything yet"
    inbox.take("a")
    assert inbox.taken_last_by("a") and not inbox.taken_last_by("")
    inbox.put(event(1, 11))
    assert inbox.taken_last_by("a"), "an event arriving changes nothing"
    assert [e.task_id for e in inbox.take("b")] == [1]
    assert inbox.taken_last_by("b") and not inbox.taken_last_by("a")
    assert inbox.weight() == 0, "the note takes no room of the caps"


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


def caps(tmp_path, project_blocks: int, total_blocks: int) -> Inboxes:
    return Inboxes(StoreLayout(tmp_path), project_blocks * BLOCK, total_blocks * BLOCK)


def text_event(task_id: int, text: str = "Ich schlafe schlecht.") -> AnnotationEvent:
    annotation = {"id": task_id, "result": [], "completed_by": 1}
    return AnnotationEvent(task_id=task_id, task_data={"text": text}, annotation=annotation)


def test_a_project_s_inbox_keeps_no_more_bytes_than_its_cap_and_says_so_once(tmp_path, caplog):
    inboxes = caps(tmp_path, project_blocks=5, total_blocks=100)
    secret = "a coder's segment"
    kept = [inboxes.put("7", text_event(n, f"{secret} {n}")) for n in range(8)]
    assert kept == [True] * 5 + [False] * 3, "each event takes a block: five fit"
    warnings = [record for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 1, "one line for the drop, not one per event"
    message = warnings[0].getMessage()
    assert "project 7" in message and "INBOX_MAX_BYTES_PER_PROJECT" in message and "5 kept" in message
    assert secret not in message and "completed_by" not in message
    inbox = Inbox(tmp_path / "7" / "inbox")
    assert inbox.weight() <= 5 * BLOCK + BLOCK, "the events and the mark of the drop"
    assert inbox.peek() is None and inbox.take() is None, "events were dropped: the round reads everything"
    assert inbox.take() == [] and inboxes.put("7", text_event(9)), "after that round, the inbox keeps again"


def test_an_event_bigger_than_the_cap_is_dropped_not_cut(tmp_path):
    inboxes = caps(tmp_path, project_blocks=2, total_blocks=100)
    assert not inboxes.put("7", text_event(1, "x" * 3 * BLOCK))
    assert Inbox(tmp_path / "7" / "inbox").take() is None


def test_all_inboxes_together_keep_no_more_bytes_than_the_total_cap(tmp_path, caplog):
    inboxes = caps(tmp_path, project_blocks=10, total_blocks=25)
    assert all(inboxes.put(project, text_event(n)) for project in ("1", "2") for n in range(10))
    assert [inboxes.put("3", text_event(n)) for n in range(7)] == [True] * 5 + [False] * 2
    assert "project 3" in caplog.text and "INBOX_MAX_BYTES (" in caplog.text
    total = sum(Inbox(tmp_path / project / "inbox").weight() for project in ("1", "2", "3"))
    assert total <= 25 * BLOCK + BLOCK
    assert len(Inbox(tmp_path / "1" / "inbox").take()) == 10, "what was kept stays whole"
    assert inboxes.put("4", text_event(1)), "project 1's round made room"
    assert Inbox(tmp_path / "3" / "inbox").take() is None


def test_an_event_keeps_of_its_task_only_the_coded_text_and_of_its_annotation_what_the_loop_reads(tmp_path):
    text = "Ich schlafe schlecht 😴, grüße aus Köln — ½ 𝄞"
    data = {"text": text, "html": "<p>" + "x" * 900_000, "meta": {"pages": list(range(1000))}, "n": 5}
    annotation = {"id": 3, "result": [{"value": {"choices": ["a"]}}], "completed_by": 2, "lead_time": 9.5}
    annotation |= {
        "was_cancelled": False,
        "updated_at": "2026-12-01",
        "created_at": "2026-11-30",
        "parent_prediction": 11,
        "draft_created_at": None,
        "ground_truth": False,
        "task": data,
    }
    event = AnnotationEvent.of(40, data, annotation, text_field="text")
    inbox = Inbox(tmp_path / "inbox")
    assert inbox.put(event)
    assert sum(path.stat().st_size for path in (tmp_path / "inbox").iterdir()) < 1000
    (taken,) = inbox.take()
    assert taken.task_data == {"text": text}, "umlauts and emoji survive"
    assert taken.annotation == {key: annotation[key] for key in ANNOTATION_KEYS}
    unknown_form = AnnotationEvent.of(40, data, annotation, text_field=None)
    assert set(unknown_form.task_data) == {"text", "html"}, "without the form: the text fields only"
    assert AnnotationEvent.of(40, {"other": "y"}, annotation, text_field="text").task_data == {}
