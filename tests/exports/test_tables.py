"""The tables: every row and column of the CSV against hand-written expectations; JSON lines and Parquet
hold the same values with their types."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import pyarrow.parquet as pq
import pytest

from backend.exports.tables import ExportError, check_writable, format_of, write_table
from tests.exports.conftest import VERSION, all_tasks

HEADER = [
    *("task_id", "text", "question", "interview_id", "speech_index", "meta_child_sex"),
    *("code_physical_health", "code_mental_health", "code_daily_functioning", "code_health_unspecific"),
    *("code_freq_mentioned", "source", "coders", "n_coders", "rule", "disagreement", "coder_codes"),
    *(
        "autocoded",
        "validation",
        "model_version",
        "suggested_codes",
        "p_physical_health",
        "p_mental_health",
        "p_daily_functioning",
        "p_health_unspecific",
    ),
    *("p_freq_mentioned", "evidence"),
]
EVIDENCE = [{"code": "health_unspecific", "start": 7, "end": 17, "text": "Gesundheit"}]


def expected_rows(a: str, b: str) -> list[list[str]]:
    """By hand: tasks 0, 1 and 4 (annotated, listed first), then 2 and 3."""
    return [
        ["0", "Mir tut der Bauch weh.", "Wie geht es dir?", "a", "2", "Mädchen", "1", "0", "0", "0", "0",
         "coders", f"{a};{b}", "2", "majority", "0",
         json.dumps({a: ["physical_health"], b: ["physical_health"]}),
         "", "", "", "", "", "", "", "", "", "[]"],
        # a tie: the later answer (b's) decides each code under the majority rule
        ["1", "Ich bin oft traurig 😢 und müde.", "Und sonst?", "a", "1", "Mädchen", "1", "0", "0", "0", "0",
         "coders", f"{a};{b}", "2", "majority", "1",
         json.dumps({a: ["mental_health", "freq_mentioned"], b: ["physical_health"]}),
         "", "", "", "", "", "", "", "", "", "[]"],
        # one coder's "none of these": coded, every code 0 (the coder overrides the hand-over's 0);
        # ranked by the version before it was coded, which suggested nothing
        ["4", "Nichts.", "Noch etwas?", "b", "3", "Junge", "0", "0", "0", "0", "0",
         "coders", a, "1", "single coder", "", json.dumps({a: []}), "", "",
         VERSION, "", "0.05", "0.1", "0.1", "0.4", "0.2", "[]"],
        # uncoded, in the validation sample: no code decided, not even 0
        ["2", "Ich spiele gern Fußball.", "Was machst du gern?", "b", "1", "Junge", "", "", "", "", "",
         "uncoded", "", "0", "", "", "{}", "", "held out", "", "", "", "", "", "", "", "[]"],
        # the model decides only the handed-over code; the evidence's offsets count characters: the
        # emoji is one (two UTF-16 units in Label Studio)
        ["3", "😀 Über Gesundheit weiß ich nichts.", "Gesundheit?", "b", "2", "Junge",
         "", "", "", "1", "", "model", "", "0", "", "", "{}", f"health_unspecific@{VERSION}", "",
         VERSION, "health_unspecific", "0.1", "0.2", "0.05", "0.8", "0.3",
         json.dumps(EVIDENCE, ensure_ascii=False)],
    ]  # fmt: skip


def test_every_row_and_column_of_the_csv(tmp_path, studio, maker, names):
    path = tmp_path / "corpus.csv"
    written = write_table(maker.rows(all_tasks(studio)), maker.columns(), path, "csv", maker.kinds())
    with path.open(encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    assert header == HEADER
    assert rows == expected_rows(names("coder.a@example.org"), names("coder.b@example.org"))
    assert written == 5
    assert "example.org" not in path.read_text(encoding="utf-8")  # pseudonyms, never emails


def test_jsonl_and_parquet_hold_the_same_values_with_their_types(tmp_path, studio, maker):
    write_table(maker.rows(all_tasks(studio)), maker.columns(), tmp_path / "c.jsonl", "jsonl", maker.kinds())
    write_table(
        maker.rows(all_tasks(studio)), maker.columns(), tmp_path / "c.parquet", "parquet", maker.kinds()
    )
    lines = [json.loads(line) for line in (tmp_path / "c.jsonl").read_text(encoding="utf-8").splitlines()]
    table = pq.read_table(tmp_path / "c.parquet")
    assert table.column_names == HEADER == list(lines[0])
    model_coded, uncoded = lines[4], lines[3]
    assert model_coded["evidence"] == [
        {"code": "health_unspecific", "start": 7, "end": 17, "text": "Gesundheit"}
    ]
    assert (model_coded["code_health_unspecific"], uncoded["code_health_unspecific"]) == (1, None)
    assert [line["disagreement"] for line in lines] == [False, True, None, None, None]
    parquet = table.to_pylist()
    for line, row in zip(lines, parquet, strict=True):
        as_text = {
            k: json.dumps(v, ensure_ascii=False) if isinstance(v, list | dict) else v for k, v in line.items()
        }
        assert row == as_text
    assert str(table.schema.field("code_physical_health").type) == "int64"
    assert str(table.schema.field("p_physical_health").type) == "double"


def test_parquet_streams_in_row_groups(tmp_path, monkeypatch, studio, maker):
    monkeypatch.setattr("backend.exports.tables.CHUNK", 2)
    write_table(
        maker.rows(all_tasks(studio)), maker.columns(), tmp_path / "c.parquet", "parquet", maker.kinds()
    )
    assert pq.ParquetFile(tmp_path / "c.parquet").metadata.num_row_groups == 3


def test_the_format_comes_from_the_suffix_or_the_option(tmp_path):
    assert format_of(tmp_path / "x.CSV", None) == "csv"
    assert format_of(tmp_path / "x.txt", "parquet") == "parquet"
    with pytest.raises(ExportError, match="--format 'xlsx': unknown; use one of csv, jsonl, parquet, qdpx"):
        format_of(tmp_path / "x.csv", "xlsx")
    with pytest.raises(ExportError, match=r"cannot tell the format from the suffix '\.xlsx'"):
        format_of(tmp_path / "x.xlsx", None)


def test_an_unwritable_path_is_refused_before_any_work(tmp_path):
    with pytest.raises(ExportError, match=r"cannot write .*/missing/x\.csv: No such file or directory"):
        check_writable(tmp_path / "missing" / "x.csv")
    with pytest.raises(ExportError, match="it is a folder"):
        check_writable(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_data_field_named_like_a_column_of_ours_keeps_its_value_beside_it(tmp_path, studio, maker):
    from dataclasses import replace

    studio.all[2] = type(studio.all[2])(2, {**studio.all[2].data, "source": "interview file 7"})
    maker = replace(maker, fields=(*maker.fields, "source"))
    (row,) = [row for row in maker.rows(all_tasks(studio)) if row["task_id"] == 2]
    assert (row["source"], row["data_source"]) == ("uncoded", "interview file 7")
    assert maker.columns().count("source") == 1 and "data_source" in maker.columns()


def test_evidence_only_from_a_served_prediction_the_serving_version_wrote(studio, model, maker):
    """Label Studio serves every queue head under one name: whose it is, the live set says."""
    task = studio.all[3]
    assert maker.row(task)["evidence"], "written by the serving version"
    other = replace(maker, model=replace(model, live=frozenset({4})))
    assert other.row(task)["evidence"] == [], "served, but written by an earlier version"
