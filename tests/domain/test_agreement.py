"""Inter-coder agreement, checked against figures computed by hand."""

import json

import numpy as np
import pytest

from backend.cli import main
from backend.domain.agreement import agreement, agreement_table, krippendorff_alpha, percent_agreement
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
