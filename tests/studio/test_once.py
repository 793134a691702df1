"""label-studio-sdk sends a request again when Label Studio answers 5xx, a POST too: a create that
Label Studio saved before it failed is then made twice. Ours are sent once (studio/client.py ONCE)."""

import httpx
import pytest

from backend.studio.client import StudioClient, StudioError

PREDICTION = {"task": 7, "result": [], "score": 0.25, "model_version": "v1-20261206120000"}


def locked_studio(posts: list[str]) -> httpx.Client:
    """A Label Studio that answers every POST 500 "database is locked" (SQLite under load)."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(request.url.path)
            return httpx.Response(500, json={"detail": "database is locked"})
        return httpx.Response(200, json=[])

    return httpx.Client(transport=httpx.MockTransport(answer))


def test_the_sdk_sends_a_failed_create_three_times_and_the_client_once(monkeypatch):
    from label_studio_sdk.client import LabelStudio
    from label_studio_sdk.core.api_error import ApiError

    monkeypatch.setattr("time.sleep", lambda seconds: None)  # the SDK's back-off between retries
    posts: list[str] = []
    sdk = LabelStudio(base_url="http://studio.test", api_key="a-token", httpx_client=locked_studio(posts))
    with pytest.raises(ApiError):
        sdk.predictions.create(**PREDICTION)
    assert posts == ["/api/predictions/"] * 3, "the bug: one create, sent three times"

    posts.clear()
    client = StudioClient("http://studio.test", "a-token")
    client._sdk = sdk
    with pytest.raises(StudioError, match="database is locked"):
        client.create_prediction(3, PREDICTION)
    assert posts == ["/api/predictions/"], "sent once"
