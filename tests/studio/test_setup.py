"""Project set-up edge cases, with a stand-in for the SDK (real Label Studio: tests/e2e/test_init.py)."""

from types import SimpleNamespace

import pytest

from backend.studio.client import StudioClient, StudioError
from backend.studio.setup import ProjectSetter, explain, segment_key, segment_tasks


class Refusal(Exception):
    """What label-studio-sdk raises for an HTTP error."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status_code, self.body = status, {"detail": detail}


class Webhooks:
    def __init__(self, refusal: Refusal | None):
        self.refusal, self.made = refusal, []

    def list(self, project):
        return list(self.made)

    def create(self, **fields):
        if self.refusal:
            raise self.refusal
        self.made.append(SimpleNamespace(url=fields["url"], headers=fields.get("headers", {}), id=1))


def setter(refusal: Refusal | None = None) -> tuple[ProjectSetter, Webhooks]:
    client = StudioClient("http://127.0.0.1:9", "token-123")
    hooks = Webhooks(refusal)
    client._sdk = SimpleNamespace(
        ml=SimpleNamespace(
            list=lambda project: [], create=lambda **fields: SimpleNamespace(id=1, state="CO")
        ),
        webhooks=hooks,
    )
    return ProjectSetter(client), hooks


def test_a_missing_webhook_is_made_with_the_backends_credentials():
    made, hooks = setter()
    connection = made.connect(3, "http://backend.internal:9090", ("lead", "pw"), timeout=1)
    assert connection.state == "connected" and connection.webhook_authorized
    assert hooks.made[0].url == "http://backend.internal:9090/webhook"
    assert hooks.made[0].headers["Authorization"].startswith("Basic ")


def test_a_connection_label_studio_saved_before_it_failed_is_taken_not_made_again():
    """SQLite under load: the create answered 500 after the row was saved (studio/client.py ONCE)."""
    saved = []

    def create(**fields):
        assert fields["request_options"] == {"max_retries": 0}, "sent once"
        saved.append(SimpleNamespace(id=5, url=fields["url"], state="CO"))
        raise Refusal(500, "database is locked")

    made, _ = setter()
    made.client._sdk.ml = SimpleNamespace(list=lambda project: list(saved), create=create)
    connection = made.connect(3, "http://backend.internal:9090", ("lead", "pw"), timeout=1)
    assert connection.state == "connected" and len(saved) == 1


def test_a_second_connection_to_the_backend_is_removed_and_the_renewed_one_kept():
    url = "http://backend.internal:9090"
    held = [SimpleNamespace(id=4, url=url, state="CO"), SimpleNamespace(id=9, url=url, state="CO")]
    removed = []
    made, _ = setter()
    made.client._sdk.ml = SimpleNamespace(
        list=lambda project: list(held),
        update=lambda id, **fields: held[0],
        delete=lambda id: removed.append(id),
    )
    made.connect(3, url, ("lead", "pw"), timeout=1)
    assert removed == [9], "the renewed connection stays, the other goes"


def test_a_connection_that_failed_and_was_not_saved_is_an_error():
    def create(**fields):
        raise Refusal(500, "database is locked")

    made, _ = setter()
    made.client._sdk.ml = SimpleNamespace(list=lambda project: [], create=create)
    with pytest.raises(StudioError, match="connect the backend"):
        made.connect(3, "http://backend.internal:9090", ("lead", "pw"), timeout=1)


def test_a_host_without_a_dot_is_named_as_why_there_is_no_webhook():
    refused, _ = setter(Refusal(400, "Enter a valid URL."))
    with pytest.raises(StudioError, match="host name without a dot") as raised:
        refused.connect(3, "http://backend:9090", ("lead", "pw"), timeout=1)
    assert "http://backend.internal:9090" in str(raised.value) and "pw" not in str(raised.value)


@pytest.mark.parametrize(
    ("message", "status", "fix"),
    [
        ("HTTP 401: Invalid token.", 401, "LABEL_STUDIO_API_KEY is not a valid token"),
        (
            "URL resolves to a reserved network address (block: 127.0.0.0/8)",
            403,
            "SSRF_PROTECTION_ENABLED=false",
        ),
        ("Can't resolve hostname backend", 500, "cannot resolve the backend's host"),
        ("Can't connect to ML backend http://x:9090, health check failed", 400, "cannot reach the backend"),
        ("ConnectError: [Errno 111] Connection refused", None, "is Label Studio running at LABEL_STUDIO_URL"),
    ],
)
def test_each_refusal_names_its_fix(message, status, fix):
    assert fix in explain(message, status)


def test_segments_become_tasks_that_are_recognised_when_imported_again():
    tasks = segment_tasks([{"id": "a1", "text": "My knee hurts.", "question": "How are you?"}], "answer")
    assert tasks == [{"answer": "My knee hurts.", "question": "How are you?", "segment_id": "a1"}]
    assert segment_key(tasks[0], "answer") == ("a1", "My knee hurts.")
    assert segment_key({**tasks[0], "answer": "edited"}, "answer") != segment_key(tasks[0], "answer")
    held_with_nul = {**tasks[0], "answer": "My knee\x00 hurts."}  # imported before NULs were removed
    assert segment_key(held_with_nul, "answer") == segment_key(tasks[0], "answer")


def test_a_segments_interview_fields_come_along_and_its_codes_do_not():
    row = {
        "id": "i1#2",
        "text": "Gut.",
        "interview_id": "i1",
        "speech_index": 2,
        "meta": {"sex": "f"},
        "codes": [],
    }
    assert segment_tasks([row]) == [
        {
            "interview_id": "i1",
            "speech_index": 2,
            "meta": {"sex": "f"},
            "text": "Gut.",
            "question": "",
            "segment_id": "i1#2",
        }
    ]
