"""Codebooks in and out: a REFI-QDA codebook makes a working label config, a project's codes make a
codebook, and the way there and back keeps names, descriptions, order and the tree."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from pyrefiqda import RefiCodebook

from backend.cli.project import config_from_codebook
from backend.domain.scheme import parse_label_config
from backend.exports.codebook import (
    CodebookCode,
    CodebookError,
    codebook_xml,
    label_config_from,
    read_codebook,
)
from backend.resources import label_config

FIXTURE = Path(__file__).parents[1] / "fixtures" / "refi_qda" / "codebook.qdc"
# The shape of an ATLAS.ti 23 project export (process/ref_materials/samples of enricllagostera/ponte):
# upper-case GUIDs without braces, two users, a codable parent whose children are codable, no
# descriptions, a codebook inside project.qde inside a zip. The names are made up.
ATLAS_QDE = """<?xml version="1.0" encoding="utf-8"?>
<Project xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="urn:QDA-XML:project:1.0 http://schema.qdasoftware.org/versions/Project/v1.0/Project.xsd"
  origin="ATLAS.ti for Windows 23.2.3.27778" name="made-up-project"
  creatingUserGUID="0A1B2C3D-0000-4000-8000-000000000001" creationDateTime="2023-08-16T15:49:36Z"
  xmlns="urn:QDA-XML:project:1.0">
  <Users>
    <User guid="0A1B2C3D-0000-4000-8000-000000000001" name="A Researcher" />
    <User guid="0A1B2C3D-0000-4000-8000-000000000002" name="ATLAS.ti" />
  </Users>
  <CodeBook>
    <Codes>
      <Code guid="0A1B2C3D-0000-4000-8000-000000000010" name="Health" isCodable="true">
        <Code guid="0A1B2C3D-0000-4000-8000-000000000011" name="2023 physical" isCodable="true" />
        <Code guid="0A1B2C3D-0000-4000-8000-000000000012" name="2023 mental" isCodable="true" />
      </Code>
    </Codes>
  </CodeBook>
</Project>
"""


def names_and_descriptions(codes: list[CodebookCode], path=()) -> list[tuple]:
    found = []
    for code in codes:
        found.append(((*path, code.name), code.description, code.codable))
        found.extend(names_and_descriptions(list(code.children), (*path, code.name)))
    return found


def test_a_hand_written_codebook_makes_a_form_and_says_what_it_leaves_out(capsys):
    config = config_from_codebook(str(FIXTURE))
    scheme = parse_label_config(config)
    assert scheme.names() == {
        "korper": "Körper",
        "korper__schmerzen": "Körper › Schmerzen",
        "gefuhle__sorgen": "Gefühle › Sorgen",
        "gefuhle__freude": "Gefühle › Freude",
        "alltag_schule": "Alltag & Schule",
    }
    assert scheme.codebook()["alltag_schule"] == "Alltag & Schule. School, play, sport, friends <and> chores."
    assert scheme.tags[0].multiple and scheme.tags[0].none_option == "none"
    said = capsys.readouterr().out
    assert "'Memos' is not codable and has no codes under it: left out" in said
    assert "colours are not carried" in said and "sets are not carried" in said
    assert "child codes are options of the same question" in said


def test_the_codebook_of_an_atlas_ti_project_makes_a_form(tmp_path):
    path = tmp_path / "atlas.qdpx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("project.qde", ATLAS_QDE)
    codes, notes = read_codebook(path)
    config, more = label_config_from(codes)
    assert list(parse_label_config(config).names().values()) == [
        "Health",
        "Health › 2023 physical",
        "Health › 2023 mental",
    ]
    assert notes == [] and more == [
        "child codes are options of the same question, named by their path ('Parent › Child')"
    ]


def test_a_codebook_goes_there_and_back_with_names_descriptions_order_and_tree(tmp_path):
    codes, _ = read_codebook(FIXTURE)
    config, _ = label_config_from(codes)
    out = tmp_path / "back.qdc"
    out.write_bytes(codebook_xml(parse_label_config(config), 7))
    back, _ = read_codebook(out)
    kept = [code for code in names_and_descriptions(codes) if code[0] != ("Memos",)]  # said to be left out
    assert names_and_descriptions(back) == kept
    parsed = RefiCodebook.load(out)  # an independent reader, generated from the codebook schema
    assert [code.name for code in parsed.codes.code] == ["Körper", "Gefühle", "Alltag & Schule"]
    assert out.read_bytes() == codebook_xml(parse_label_config(config), 7)  # stable GUIDs


def test_the_study_forms_codebook_names_a_yes_no_question_by_the_question():
    codes, _ = read_codebook_bytes(codebook_xml(parse_label_config(label_config("interview_coding")), 1))
    assert [(code.name, code.description) for code in codes] == [
        ("Physical health", "The body: illness, pain, injury, fitness, sleep, eating, growing."),
        ("Mental health", "Feelings and the mind: mood, worries, fear, stress, happiness, self-esteem."),
        ("Daily functioning", "Doing everyday things: school, play, sport, friends, chores, getting around."),
        ("Health, unspecific", "Health or feeling well or unwell in general, without saying which kind."),
        ("frequency", "How often something happens (often, never, every day)."),
    ]


def read_codebook_bytes(data: bytes):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.qdc"
        path.write_bytes(data)
        return read_codebook(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"codes: [a, b]", "not a REFI-QDA codebook: not XML"),
        (b"<View><Choices/></View>", r"not a REFI-QDA codebook: its root is <View> in no namespace"),
        (b'<CodeBook xmlns="urn:QDA-XML:codebook:1.0"><Codes/></CodeBook>', "the codebook holds no codes"),
        (b'<Project xmlns="urn:QDA-XML:project:1.0" name="p"/>', "the codebook holds no codes"),
    ],
)
def test_a_file_that_is_no_codebook_or_holds_no_codes_is_refused(tmp_path, content, message):
    path = tmp_path / "bad.qdc"
    path.write_bytes(content)
    with pytest.raises(CodebookError, match=message):
        read_codebook(path)


def test_a_codebook_without_a_codable_code_is_refused():
    with pytest.raises(CodebookError, match="no codable code"):
        label_config_from([CodebookCode("Memos", codable=False)])


def test_a_zip_without_a_project_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    (tmp_path / "x.qdpx").write_bytes(buffer.getvalue())
    with pytest.raises(CodebookError, match=r"a zip without a project\.qde"):
        read_codebook(tmp_path / "x.qdpx")
