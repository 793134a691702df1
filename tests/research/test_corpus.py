"""Reading segment files: what a file holds that Label Studio cannot take is removed, and said."""

import json
import logging

from backend.research.corpus import read_segments


def test_nul_characters_are_removed_and_the_lines_named(tmp_path, caplog):
    path = tmp_path / "segments.jsonl"
    rows = [
        {"id": "a", "text": "Ich wollte\u0000 mit dir reden.", "question": "Wie\u0000?"},
        {"id": "b", "text": "Mein Knie tut weh."},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with caplog.at_level(logging.WARNING):
        read = read_segments(path, require_codes=False)
    assert [(row["text"], row.get("question")) for row in read] == [
        ("Ich wollte mit dir reden.", "Wie?"),
        ("Mein Knie tut weh.", None),
    ]
    assert "NUL characters removed from 1 line(s) (1)" in caplog.text and "PostgreSQL" in caplog.text


def test_a_file_without_nul_characters_reads_as_it_is_and_says_nothing(tmp_path, caplog):
    path = tmp_path / "segments.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "Mein Knie tut weh."}) + "\n")
    with caplog.at_level(logging.WARNING):
        assert read_segments(path, require_codes=False) == [{"id": "a", "text": "Mein Knie tut weh."}]
    assert not caplog.text
