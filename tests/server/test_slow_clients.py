"""Slow or stuck clients never starve the server: the real `coding-backend serve` (one worker of four
threads, its defaults) beside 50 connections that send part of a request and then wait, as a slow
network, a stuck proxy or an attacker would. Label Studio is down (its rounds fail at once, in their
own processes): only the HTTP side is under test."""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from backend.devtools.local_studio import free_port
from backend.devtools.processes import BackendProcess
from backend.resources import label_config

AUTH = ("lead", "slow-clients-pass-1")
SLOW = 50
ANSWER_SECONDS = 1.0  # Label Studio's webhook timeout


@pytest.fixture
def backend(model_path, tmp_path) -> Iterator[BackendProcess]:
    with socket.socket() as down:  # bound, never listening: Label Studio refuses at once
        down.bind(("127.0.0.1", 0))
        env = {
            **os.environ,
            "MODEL_NAME": model_path,
            "MODEL_DIR": str(tmp_path / "models"),
            "LABEL_STUDIO_URL": f"http://127.0.0.1:{down.getsockname()[1]}",
            "LABEL_STUDIO_API_KEY": "not-checked-while-down",
            "BASIC_AUTH_USER": AUTH[0],
            "BASIC_AUTH_PASS": AUTH[1],
            "CLIENT_TIMEOUT": "3",
            "MAX_REQUEST_BYTES": "100000",
            "ACCESS_LOG": "true",
            "HF_HUB_OFFLINE": "1",
        }
        server = BackendProcess(free_port(), env, AUTH, log_path=tmp_path / "backend.log").start()
        try:
            yield server
        finally:
            server.stop()


def half_sent(port: int, count: int) -> list[socket.socket]:
    """`count` connections that stop mid-request: most after the request line and one header, the
    rest after the headers and 10 of the 5,000 bytes of body they announce."""
    held = []
    for n in range(count):
        connection = socket.create_connection(("127.0.0.1", port), timeout=5)
        if n % 5:
            connection.sendall(b"POST /webhook HTTP/1.1\r\nHost: backend\r\n")
        else:
            head = b"POST /webhook HTTP/1.1\r\nHost: backend\r\nContent-Type: application/json\r\n"
            connection.sendall(head + b"Content-Length: 5000\r\n\r\n" + b'{"action":')
        held.append(connection)
    return held


def the_coders_requests(backend: BackendProcess) -> dict[str, int]:
    """/health, a submit's webhook and a /predict, each given one second to answer; their statuses."""
    task = {"id": 1, "data": {"text": "I sleep badly since the operation.", "question": "How are you?"}}
    predict = {"tasks": [task], "project": "1.1700000000", "label_config": label_config("interview_coding")}
    event = {"action": "ANNOTATION_CREATED", "project": {"id": 1}, "annotation": {"id": 1}}
    with httpx.Client(base_url=backend.url, auth=AUTH, timeout=ANSWER_SECONDS) as client:
        return {
            "/health": client.get("/health").status_code,
            "/webhook": client.post("/webhook", json=event).status_code,
            "/predict": client.post("/predict", json=predict).status_code,
        }


def test_fifty_half_sent_requests_leave_health_webhook_and_predict_answering_within_a_second(backend):
    assert the_coders_requests(backend) == {"/health": 200, "/webhook": 202, "/predict": 200}  # warm
    held = half_sent(backend.port, SLOW)  # connected and sent before the requests below: served first
    try:
        assert the_coders_requests(backend) == {"/health": 200, "/webhook": 202, "/predict": 200}
    finally:
        for connection in held:
            connection.close()
    logged = re.findall(r'"POST /webhook HTTP/1.1" (\d{3}) (\d+)us', backend.log_path.read_text())
    assert [status for status, _ in logged] == ["202", "202"], "the access log bench_load.py reads"


def test_a_silent_connection_is_closed_after_client_timeout_and_an_oversized_body_refused_unread(backend):
    [silent] = half_sent(backend.port, 1)  # a body announced, 10 bytes of it sent
    with silent:
        started = time.monotonic()
        silent.settimeout(30)  # the deadline: CLIENT_TIMEOUT=3, checked every second
        assert silent.recv(1024) == b"", "closed without an answer"
        assert time.monotonic() - started >= 2, "closed for its silence, not at once"
    with socket.create_connection(("127.0.0.1", backend.port), timeout=10) as huge:
        huge.sendall(b"POST /webhook HTTP/1.1\r\nHost: backend\r\nContent-Length: 100001\r\n\r\n")
        answer = huge.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert backend.healthy()
