"""Inter-coder agreement, checked against figures computed by hand."""

import json

import numpy as np
import pytest

from backend.cli import main
from backend.domain.agreement import (
    agreement,
    agreement_table,
    krippendorff_alpha,
    model_agreement,
    model_agreement_table,
    percent_agreement,
)
from backend.domain.annotations import CoderAnswer

# Two coders, four tasks, codes a and b.   a: A=1 1 0 0, B=1 0 0 0   b: A=0 0 0 0, B=0 0 0 0
ANSWERS = {
    1: [CoderAnswer(1, "a@x", frozenset({"a"}), "1"), CoderAnswer(1, "b@x", frozenset({"a"}), "2")],
    2: [CoderAnswer(2, "a@x", frozenset({"a"}), "1"), CoderAnswer(2, "b@x", frozenset(), "2")],
    3: [CoderAnswer(3, "a@x", frozenset(), "1"), CoderAnswer(3, "b@x", frozenset(), "2")],
    4: [CoderAnswer(4, "a@x", frozenset(), "1"), CoderAnswer(4, "b@x", frozenset(), "2")],
    5: [CoderAnswer(5, "a@x", frozenset({"a", "b"}), "1")],  # one coder only: not compared
}


def test_two_coders_by_hand():
    result = agreement(ANSWERS, ["a", "b"])
    assert result["coders"] == ["a@x", "b@x"] and result["tasks"] == 4
    a = result["codes"]["a"]
    assert a["percent_agreement"] == pytest.approx(3 / 4)
    # kappa: p_o = 3/4, p_e = 2/4 * 1/4 + 2/4 * 3/4 = 1/2  ->  (3/4 - 1/2) / (1/2) = 1/2
    assert a["cohen_kappa"]["a@x | b@x"] == {"kappa": pytest.approx(0.5), "units": 4}
    # alpha: 8 pairable values (three 1s, five 0s); D_o = 2/8, D_e = 2*3*5/(8*7)  ->  1 - D_o/D_e = 8/15
    assert a["krippendorff_alpha"] == pytest.approx(8 / 15)
    b = result["codes"]["b"]  # nobody ever gave b: agreement is perfect, kappa and alpha undefined
    assert b["percent_agreement"] == 1.0 and b["krippendorff_alpha"] is None
    assert b["cohen_kappa"]["a@x | b@x"]["kappa"] is None
    overall = result["overall"]  # 8 (task, code) units: 7 agree
    assert overall["percent_agreement"] == pytest.approx(7 / 8)
    # pooled kappa: p_o = 7/8, p_e = 2/8 * 1/8 + 6/8 * 7/8 = 44/64  ->  (56/64 - 44/64) / (20/64) = 3/5
    assert overall["cohen_kappa"]["a@x | b@x"]["kappa"] == pytest.approx(0.6)
    assert overall["exact_agreement"] == pytest.approx(3 / 4)


def test_three_coders_with_gaps():
    units = np.array([[1, np.nan, 0], [1, 0, 0], [0, 0, np.nan]])  # coders x units
    # unit 1: pairs (1,1) (1,0) (1,0) -> 1/3; unit 2: one pair, agrees -> 1; unit 3: one pair, agrees -> 1
    assert percent_agreement(units) == pytest.approx((1 / 3 + 1 + 1) / 3)
    # alpha: pairable values 1,1,0 | 0,0 | 0,0 -> n = 7, two 1s, five 0s;
    # D_o = (2 * 1/2 * 2 [unit 1: 1-0 pairs, weight 1/(m-1)]) / 7 = 2/7, D_e = 2*2*5 / (7*6) = 20/42
    assert krippendorff_alpha(units) == pytest.approx(1 - (2 / 7) / (20 / 42))


def test_nothing_to_compare_with_one_coder():
    result = agreement({5: ANSWERS[5]}, ["a", "b"])
    assert result["tasks"] == 0 and result["overall"]["percent_agreement"] is None
    assert "tasks coded by two or more: 0" in agreement_table(result)


def test_table_names_every_code_and_pair():
    table = agreement_table(agreement(ANSWERS, ["a", "b"]))
    assert "a@x | b@x: 0.500 (4)" in table and "75.0" in table and "0.533" in table
    assert "overall (task x code)" in table


# The model's out-of-fold answers (codes a, b): a = 1 0 0 0 1 (as B on tasks 1-4), b = 0 0 1 ? 1
MODEL = {1: [1, 0], 2: [0, 0], 3: [0, 1], 4: [0, np.nan], 5: [1, 1], 6: [1, 1]}


def test_the_model_as_a_coder_by_hand():
    result = model_agreement(ANSWERS, MODEL, ["a", "b"])
    assert result["coder"] == "model" and result["tasks"] == 5  # task 6: nobody answered it
    with_a, with_b = result["with"]["a@x"], result["with"]["b@x"]
    assert with_a["tasks"] == 5 and with_b["tasks"] == 4
    # with B on code a: the model answers exactly as B did -> kappa 1, alpha 1
    assert with_b["codes"]["a"] == {"kappa": pytest.approx(1.0), "alpha": pytest.approx(1.0), "units": 4}
    # with A on code a, tasks 1-5: A = 1 1 0 0 1, model = 1 0 0 0 1. p_o = 4/5,
    # p_e = 3/5 * 2/5 + 2/5 * 3/5 = 12/25 -> (20/25 - 12/25) / (13/25) = 8/13.
    # alpha: 10 values, five 1s and five 0s; D_o = 2/10, D_e = 2*5*5/(10*9) = 50/90 -> 1 - 18/50 = 16/25
    assert with_a["codes"]["a"] == {
        "kappa": pytest.approx(8 / 13),
        "alpha": pytest.approx(16 / 25),
        "units": 5,
    }
    # code b, the model has no answer on task 4: A = 0 0 0 1 on tasks 1, 2, 3, 5; model = 0 0 1 1.
    # p_o = 3/4, p_e = 3/4 * 2/4 + 1/4 * 2/4 = 1/2 -> kappa 1/2; alpha: 8 values, three 1s and
    # five 0s, one disagreeing unit -> D_o = 2/8, D_e = 30/56 -> 1 - 14/30 = 8/15
    assert with_a["codes"]["b"] == {"kappa": pytest.approx(0.5), "alpha": pytest.approx(8 / 15), "units": 4}
    # overall with A: 9 (task, code) units; A = a:1 1 0 0 1, b:0 0 0 1; model = a:1 0 0 0 1, b:0 0 1 1
    # (tasks 1 2 3 5). p_o = 7/9, A has 4 ones, the model 4: p_e = 4/9*4/9 + 5/9*5/9 = 41/81
    # -> (63/81 - 41/81) / (40/81) = 22/40
    assert with_a["overall"]["kappa"] == pytest.approx(22 / 40) and with_a["overall"]["units"] == 9


def test_the_model_table_sits_beside_the_coders_kappa():
    human = agreement(ANSWERS, ["a", "b"])
    table = model_agreement_table(model_agreement(ANSWERS, MODEL, ["a", "b"]), human)
    assert "model | a@x" in table and "model | b@x" in table
    row = next(line for line in table.splitlines() if line.startswith("a "))
    assert "0.500" in row and "0.615 / 0.640 (5)" in row and "1.000 / 1.000 (4)" in row


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_cli_agreement_from_a_file(tmp_path, capsys):
    rows = [
        {"id": f"t{task}", "coder": a.coder, "codes": sorted(a.codes), "text": "x"}
        for task, answers in ANSWERS.items()
        for a in answers
    ]
    data = write_jsonl(tmp_path / "coded.jsonl", rows)
    assert main(["agreement", "--data", str(data), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["codes"]["a"]["krippendorff_alpha"] == pytest.approx(8 / 15)
    assert main(["agreement", "--data", str(data), "--coders", "a@x"]) == 0
    assert "nothing to compare" in capsys.readouterr().err


def test_cli_agreement_bad_input(tmp_path, capsys):
    assert main(["agreement"]) == 2
    assert "either --project ID" in capsys.readouterr().err
    no_coder = write_jsonl(tmp_path / "x.jsonl", [{"id": "1", "text": "x", "codes": []}])
    assert main(["agreement", "--data", str(no_coder)]) == 2
    assert 'needs an "id" and a "coder"' in capsys.readouterr().err
    assert main(["agreement", "--project", "abc"]) == 2
    assert "must be a Label Studio project id" in capsys.readouterr().err


def test_cli_agreement_with_the_model_as_a_coder(tmp_path, capsys, monkeypatch, segments, model_path):
    """Coder B codes every third segment, leaving out physical_health once; the model's answers are
    out of fold on every segment, so it is compared with A on all 36 and with B on its 12."""
    monkeypatch.setenv("MODEL_NAME", model_path)
    rows = [{**segment, "coder": "a@x"} for segment in segments]
    for number, segment in enumerate(segments[::3]):
        codes = [c for c in segment["codes"] if not (number == 0 and c == "physical_health")]
        rows.append({**segment, "coder": "b@x", "codes": codes})
    data = write_jsonl(tmp_path / "coded.jsonl", rows)
    assert main(["agreement", "--data", str(data), "--with-model", "--json"]) == 0
    model = json.loads(capsys.readouterr().out)["model"]
    assert model["tasks"] == 36 and "base body" in model["method"]
    assert {coder: figures["tasks"] for coder, figures in model["with"].items()} == {"a@x": 36, "b@x": 12}
    kappa = model["with"]["a@x"]["codes"]["physical_health"]["kappa"]
    assert 0.3 < kappa <= 1, "the bundled model learns physical health from 36 segments"
    assert model["with"]["a@x"]["overall"]["units"] == 36 * 5
    assert main(["agreement", "--data", str(data), "--with-model"]) == 0
    printed = capsys.readouterr()
    assert "model | a@x" in printed.out and "encoding 36 segment(s)" in printed.err


def test_a_files_answers_stay_oldest_first(tmp_path):
    """A coder's later line replaces the earlier one and becomes the newest answer of the segment."""
    from backend.research.corpus import file_answers

    rows = [
        {"id": "s", "coder": "a", "codes": ["x"], "text": "t"},
        {"id": "s", "coder": "b", "codes": [], "text": "t"},
        {"id": "s", "coder": "a", "codes": [], "text": "t"},
    ]
    _, answers, texts = file_answers(write_jsonl(tmp_path / "a.jsonl", rows))
    assert [(a.coder, sorted(a.codes)) for a in answers["s"]] == [("b", []), ("a", [])]
    assert texts == {"s": "t"}
