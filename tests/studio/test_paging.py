"""Paged reads of Label Studio stop at the last page: a page past it is answered 404 "Invalid page",
with a traceback in Label Studio's log (1.23.2). A fake Label Studio on a local port records the pages
asked for; no real Label Studio is started."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from backend.studio import client as client_module
from backend.studio.client import StudioClient
from backend.studio.setup import ProjectSetter


class FakeStudio(ThreadingHTTPServer):
    """`tasks` and `projects` listed in pages like Label Studio: 404 "Invalid page" past the last."""

    def __init__(self, tasks: int, projects: int):
        super().__init__(("127.0.0.1", 0), PageHandler)
        self.tasks = [{"id": i, "data": {"text": f"segment {i}"}} for i in range(1, tasks + 1)]
        self.projects = [{"id": i, "title": "Interview coding"} for i in range(1, projects + 1)]
        self.asked: list[tuple[str, int]] = []  # (listing, page) of every request

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class PageHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        parts = url.path.strip("/").split("/")
        if parts[-1].isdigit():  # /api/projects/<id>/: the project found
            return self.answer(200, {"id": int(parts[-1]), "label_config": "<View/>"})
        listing = parts[-1]
        page, size = int(query.get("page", 1)), int(query.get("page_size", 100))
        self.server.asked.append((listing, page))
        rows = self.server.tasks if listing == "tasks" else self.server.projects
        chosen = rows[(page - 1) * size : page * size]
        if page > 1 and not chosen:
            return self.answer(404, {"detail": "Invalid page."})
        if listing == "tasks":
            return self.answer(
                200, {"tasks": chosen, "total": len(rows), "total_annotations": 0, "total_predictions": 0}
            )
        return self.answer(200, {"count": len(rows), "results": chosen})

    def answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def studio(request):
    tasks, projects = getattr(request, "param", (0, 0))
    server = FakeStudio(tasks, projects)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("studio", "pages"),
    [((5, 0), [1, 2, 3]), ((6, 0), [1, 2, 3]), ((0, 0), [1]), ((1, 0), [1])],
    indirect=["studio"],
)
def test_tasks_are_read_to_the_last_page_and_no_further(studio, pages, monkeypatch):
    monkeypatch.setattr(client_module, "TASK_PAGE", 2)
    listed = list(StudioClient(studio.url, "token-123").tasks(1, annotated=True))
    assert [task.id for task in listed] == [task["id"] for task in studio.tasks]
    assert studio.asked == [("tasks", page) for page in pages]


@pytest.mark.parametrize("studio", [(0, 3)], indirect=True)
def test_projects_are_read_to_the_last_page_and_no_further(studio):
    found = ProjectSetter(StudioClient(studio.url, "token-123")).project("Interview coding", "<View/>")
    assert found == (1, False)
    assert studio.asked == [("projects", 1)]
