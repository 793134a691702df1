"""The status page's exports: a lead asks for a CSV or a `.qdpx` (a background job writes it through the
one export path, its progress on the page), then downloads it; behind the page's auth, with clear 4xx."""

from __future__ import annotations

import zipfile
from io import BytesIO

import pytest

from backend.config import load_settings
from backend.queue.files import FileQueue
from backend.queue.registry import LaneRegistry
from backend.queue.work import Lane, WorkKind
from backend.server.app import create_app
from backend.storage.exports import ExportStatus, ExportStore
from backend.storage.layout import ProjectDir
from backend.storage.state import LaneStatus, StateStore
from backend.worker.exporting import ExportOptions, ExportSource, export_project
from backend.worker.jobs.export import ProjectExports
from backend.worker.wiring import ProjectWork
from tests.fakes import FakeStudio, RecordingQueue
from tests.helpers import project_context

AUTH = {"Authorization": "Basic bGVhZDpzM2NyZXQ="}  # lead:s3cret
TEXTS = ["Mir tut der Bauch weh.", "Ich bin oft traurig 😢.", "Fußball!", "Nichts.", "Gut."]


@pytest.fixture
def settings(tmp_path):
    return load_settings(
        model_dir=tmp_path / "models",
        basic_auth_user="lead",
        basic_auth_pass="s3cret",
        multi_coder_rule="majority",
    )


@pytest.fixture
def studio() -> FakeStudio:
    studio = FakeStudio()
    for number, text in enumerate(TEXTS):
        studio.add_task(text, interview_id="ab"[number % 2], speech_index=number)
    studio.annotate(0, ["physical_health"], user=1, when="2026-01-01T10:00")
    studio.annotate(0, ["mental_health"], user=2, when="2026-01-01T11:00")
    studio.annotate(1, ["mental_health", "freq_mentioned"], user=1, when="2026-01-01T10:00")
    return studio


@pytest.fixture
def lanes(settings):
    return FileQueue(settings.server.model_dir)


@pytest.fixture
def client(settings, lanes):
    StateStore(ProjectDir(settings.server.model_dir, "4")).update(lambda state: None)  # a project of ours
    return create_app(settings, RecordingQueue(lanes)).test_client()


def run_job(studio, settings, lanes, every: float = 1.0) -> None:
    """What the body lane's worker does with the request: hold the lane, take the request, run the job."""
    ctx = project_context(studio, settings, settings.server.model_dir, project="4")
    registry = LaneRegistry(settings.server.model_dir)
    work = ProjectWork("4", {WorkKind.EXPORT: ProjectExports(ctx, every)}, registry, None)
    with lanes.hold("4", Lane.BODY) as held:
        assert held and lanes.take("4", Lane.BODY) is WorkKind.EXPORT
        work.run(WorkKind.EXPORT)


def exports_of(client) -> dict:
    return client.get("/metrics", headers=AUTH).json["projects"]["4"]["exports"]


def test_both_endpoints_require_the_status_pages_auth(client, lanes):
    wrong = {"Authorization": "Basic bGVhZDp3cm9uZw=="}  # lead:wrong
    for headers in ({}, wrong):
        assert client.post("/status/4/export/csv", headers=headers).status_code == 401
        assert client.get("/status/4/export/csv", headers=headers).status_code == 401
    assert lanes.pending("4") == []


def test_a_csv_asked_for_is_written_in_the_background_and_downloads_as_the_cli_writes_it(
    client, studio, settings, lanes, tmp_path
):
    asked = client.post("/status/4/export/csv", headers=AUTH)
    assert asked.status_code == 303 and asked.headers["Location"].endswith("/status/4#export")
    assert lanes.pending("4") == [WorkKind.EXPORT]  # the request went to the queue, nothing ran here
    assert exports_of(client)["csv"]["status"] == "requested" and exports_of(client)["qdpx"] is None
    again = client.post("/status/4/export/csv", headers=AUTH)
    assert (
        again.status_code == 409 and "a csv export of project 4 is already requested" in again.json["error"]
    )
    assert 'data-status="requested"' in client.get("/status/4", headers=AUTH).text

    run_job(studio, settings, lanes)
    csv = exports_of(client)["csv"]
    assert csv["status"] == "done" and csv["done"] == csv["total"] == len(TEXTS) and csv["error"] is None
    assert csv["finished"]["segments"] == len(TEXTS) and csv["finished"]["version"] is None
    got = client.get("/status/4/export/csv", headers=AUTH)
    assert got.status_code == 200 and got.mimetype == "text/csv"
    day = csv["finished"]["finished_at"][:10]
    assert got.headers["Content-Disposition"] == f"attachment; filename=project-4-{day}.csv"
    assert len(got.data) == csv["finished"]["size"]
    source = ExportSource(studio, 4, settings.server.model_dir, settings.loop)
    export_project(source, tmp_path / "cli.csv", "csv", ExportOptions())
    assert got.data == (tmp_path / "cli.csv").read_bytes()  # the same rows, pseudonyms and all
    assert b"example.org" not in got.data
    codebook = client.get("/status/4/export/csv?part=codebook", headers=AUTH)
    assert codebook.data == (tmp_path / "cli.codebook.csv").read_bytes()
    about = client.get("/status/4/export/csv?part=about", headers=AUTH)
    assert about.headers["Content-Disposition"] == f"attachment; filename=project-4-{day}.about.md"
    assert b"- coders: 2 segments" in about.data
    page = client.get("/status/4", headers=AUTH).text
    assert 'data-status="done"' in page and 'href="4/export/csv"' in page and "5 segments" in page


def test_a_qdpx_groups_interviews_as_asked_on_the_page(client, studio, settings, lanes):
    fields = {"source_field": "interview_id", "order_field": "speech_index"}
    assert client.post("/status/4/export/qdpx", headers=AUTH, data=fields).status_code == 303
    run_job(studio, settings, lanes)
    got = client.get("/status/4/export/qdpx", headers=AUTH)
    assert got.status_code == 200 and got.mimetype == "application/zip"
    assert got.headers["Content-Disposition"].endswith(".qdpx")
    with zipfile.ZipFile(BytesIO(got.data)) as archive:
        sources = [name for name in archive.namelist() if name.startswith("sources/")]
        project = archive.read("project.qde").decode("utf-8")
    assert len(sources) == 2 and project.count("<PlainTextSelection ") == 2  # interviews a and b


def test_progress_is_recorded_while_tasks_are_read_and_shown_with_an_eta(client, studio, settings, lanes):
    client.post("/status/4/export/csv", headers=AUTH)
    seen = []

    def look() -> None:  # one task into the listing of the uncoded ones: two coded ones read before
        seen.append((exports_of(client)["csv"], client.get("/status/4", headers=AUTH).text))

    studio.while_listing = look
    run_job(studio, settings, lanes, every=0.0)
    ((record, page),) = seen
    assert record["status"] == "running" and record["total"] == len(TEXTS) and record["done"] == 3
    assert "3 / 5 tasks read" in page and "left" in page and 'http-equiv="refresh"' in page


def test_one_file_per_format_is_kept_and_a_failed_export_keeps_the_last_one(client, studio, settings, lanes):
    for _ in range(2):
        client.post("/status/4/export/csv", headers=AUTH)
        run_job(studio, settings, lanes)
    folder = ProjectDir(settings.server.model_dir, "4").exports
    assert sorted(path.name for path in folder.iterdir()) == [
        ".exports-lock",
        "corpus.about.md",
        "corpus.codebook.csv",
        "corpus.csv",
        "exports.json",
    ]
    before = client.get("/status/4/export/csv", headers=AUTH).data
    studio.annotate(4, ["physical_health"], user=1, when="2026-01-02T10:00")
    studio.user_emails = lambda: (_ for _ in ()).throw(OSError("connection reset"))
    client.post("/status/4/export/csv", headers=AUTH)
    run_job(studio, settings, lanes)
    csv = exports_of(client)["csv"]
    assert csv["status"] == "failed" and csv["error"] == "OSError: connection reset"
    assert csv["finished"]["segments"] == len(TEXTS)  # the last good one stays downloadable
    assert client.get("/status/4/export/csv", headers=AUTH).data == before
    assert "failed: OSError: connection reset" in client.get("/status/4", headers=AUTH).text
    assert sorted(path.name for path in folder.iterdir() if path.name.startswith(".partial")) == []


def test_an_export_whose_worker_died_can_be_asked_for_again(client, settings, lanes):
    client.post("/status/4/export/qdpx", headers=AUTH)
    lanes.take("4", Lane.BODY)  # a worker took it and died twice: no request waits, no worker is at it
    store = ExportStore(ProjectDir(settings.server.model_dir, "4"))
    store.update(lambda records: setattr(records.formats["qdpx"], "status", ExportStatus.RUNNING))
    states = StateStore(ProjectDir(settings.server.model_dir, "4"))
    states.update(lambda state: setattr(state.body, "status", LaneStatus.FAILED))
    assert exports_of(client)["qdpx"]["status"] == "stopped"
    assert "stopped unfinished" in client.get("/status/4", headers=AUTH).text
    assert client.post("/status/4/export/qdpx", headers=AUTH).status_code == 303


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "said"),
    [
        ("post", "/status/9/export/csv", {}, 404, "no project 9 on this backend"),
        ("get", "/status/9/export/csv", {}, 404, "no project 9 on this backend"),
        (
            "post",
            "/status/4/export/xlsx",
            {},
            404,
            "unknown export format 'xlsx': the status page exports csv or qdpx",
        ),
        ("get", "/status/4/export/xlsx", {}, 404, "unknown export format 'xlsx'"),
        ("get", "/status/4/export/csv", {}, 404, "no csv export of project 4 yet"),
        ("get", "/status/4/export/qdpx?part=about", {}, 404, "a CSV export has the parts codebook, about"),
        ("post", "/status/4/export/csv", {"Sec-Fetch-Site": "cross-site"}, 403, "own status page"),
        ("post", "/status/4/export/csv", {"Origin": "https://evil.example"}, 403, "own status page"),
    ],
)
def test_bad_requests_get_a_clear_4xx(client, lanes, method, path, headers, status, said):
    answer = getattr(client, method)(path, headers={**AUTH, **headers})
    assert answer.status_code == status and said in answer.json["error"]
    assert lanes.pending("4") == []


def test_a_table_is_not_grouped_into_sources(client, lanes):
    answer = client.post("/status/4/export/csv", headers=AUTH, data={"source_field": "interview_id"})
    assert answer.status_code == 400 and "group a .qdpx project's sources" in answer.json["error"]
    assert lanes.pending("4") == []


def test_a_post_from_the_page_itself_is_taken(client, lanes):
    same = {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"}
    assert client.post("/status/4/export/csv", headers={**AUTH, **same}).status_code == 303
    assert lanes.pending("4") == [WorkKind.EXPORT]
