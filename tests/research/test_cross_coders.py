"""`simulate --cross-coders`: a coder × coder table, checked by hand on three coders, and end to end."""

import numpy as np
import pandas as pd
import pytest

from backend.cli import main
from backend.research.corpus import Example
from backend.research.cross_coders import coder_pair_rows, coders_of, cross_coders_markdown, transfer_rows
from backend.research.errors import DataError
from backend.research.grid import SimConfig
from tests.helpers import FIXTURES

CODED = {  # coder -> segment -> codes; p* is the training side, t* the test side
    "a": {"p1": "x", "p2": "x", "p3": "xy", "p4": "", "t1": "x", "t2": "x", "t3": "", "t4": "y"},
    "b": {"p1": "y", "p2": "y", "p3": "xy", "p4": "", "t1": "y", "t2": "", "t3": "y"},
    "c": {"p1": "xy", "p2": "xy", "t3": "xy", "t4": "x"},
}
EXAMPLES = [
    Example(segment, f"text of {segment}", tuple(codes), coder)
    for coder, segments in CODED.items()
    for segment, codes in segments.items()
]


class PriorModel:
    """Gives every segment each code that more than half of its training segments had."""

    def __init__(self, labels: np.ndarray):
        self.codes_given = labels.mean(axis=0) > 0.5

    def predict_proba(self, texts):
        return np.tile(self.codes_given.astype(float), (len(texts), 1))

    def decide(self, proba):
        return (proba >= 0.5).astype(int)


def prior_model(config, seed, texts, labels, codes):
    return PriorModel(labels), 0.0, None


def by_id(examples, fraction, seed):
    return [e for e in examples if e.id.startswith("p")], [e for e in examples if e.id.startswith("t")]


def test_the_coder_by_coder_table_by_hand():
    """The prior model of a gives x, of b gives y, of c gives x and y. F1 (undefined when a code is
    neither present nor predicted): a's test codes x = 1 1 0 0, y = 0 0 0 1; b's (t1-t3) x = 0 0 0, y = 1 0 1;
    c's (t3, t4) x = 1 1, y = 1 0."""
    config = SimConfig("prior", "tfidf", None)
    rows = transfer_rows([config], [1], EXAMPLES, ["x", "y"], 0.5, prior_model, split=by_id)
    table = {(r["train_coder"], r["test_coder"]): r for r in rows}
    assert len(rows) == 9 and {r["n_train"] for r in rows} == {4, 2}
    assert (
        table["a", "a"]["n_test"] == 4 and table["a", "b"]["n_test"] == 3 and table["a", "c"]["n_test"] == 2
    )
    expected_macro = {  # x: 2TP / (2TP + FP + FN); y likewise; mean of the two
        ("a", "a"): (2 / 3 + 0) / 2,  # x everywhere: TP 2, FP 2
        ("a", "b"): 0.0,
        ("a", "c"): (1 + 0) / 2,
        ("b", "a"): (0 + 2 / 5) / 2,  # y everywhere: TP 1, FP 3
        ("b", "b"): 4 / 5,  # x neither in b's test codes nor predicted: undefined, left out
        ("b", "c"): (0 + 2 / 3) / 2,
        ("c", "a"): (2 / 3 + 2 / 5) / 2,
        ("c", "b"): (0 + 4 / 5) / 2,
        ("c", "c"): (1 + 2 / 3) / 2,
    }
    assert {pair: row["macro_f1"] for pair, row in table.items()} == pytest.approx(expected_macro)
    assert table["c", "a"]["f1_x"] == pytest.approx(2 / 3) and table["c", "a"]["f1_y"] == pytest.approx(0.4)
    assert np.isnan(table["b", "b"]["f1_x"]) and table["c", "b"]["f1_x"] == 0.0, "given but absent: 0"


def test_coders_compared_on_the_segments_they_share_by_hand():
    """a and b share p1-p4 and t1-t3 (7): x, a = 1 1 1 0 1 1 0, b = 0 0 1 0 0 0 0 -> F1 2/(5+1) = 1/3;
    y, a = 0 0 1 0 0 0 0, b = 1 1 1 0 1 0 1 -> 1/3. Pooled kappa over 14 decisions: 6 agree, each
    coder says yes 6 times: p_o = 6/14, p_e = (6/14)^2 + (8/14)^2 = 100/196 -> (84-100)/(196-100) = -1/6."""
    rows = {(r["coder"], r["against"]): r for r in coder_pair_rows(EXAMPLES, ["x", "y"])}
    assert set(rows) == {(a, b) for a in "abc" for b in "abc" if a != b}
    ab = rows["a", "b"]
    assert (
        ab["shared"] == 7 and ab["macro_f1"] == pytest.approx(1 / 3) and ab["kappa"] == pytest.approx(-1 / 6)
    )
    assert rows["b", "a"]["macro_f1"] == pytest.approx(1 / 3), "symmetric"
    ac = rows["a", "c"]  # p1, p2, t3, t4: x a = 1 1 0 0, c = 1 1 1 1 -> 4/6; y a = 0 0 0 1, c = 1 1 1 0 -> 0
    assert ac["shared"] == 4 and ac["f1_x"] == pytest.approx(2 / 3) and ac["f1_y"] == 0.0


def test_the_markdown_has_a_table_per_configuration_and_code_and_the_coders_own():
    config = SimConfig("prior", "tfidf", None)
    rows = transfer_rows([config], [1, 2], EXAMPLES, ["x", "y"], 0.5, prior_model, split=by_id)
    text = cross_coders_markdown(rows, coder_pair_rows(EXAMPLES, ["x", "y"]), ["x", "y"], "about")
    assert "## prior: macro-F1 (mean ± sd over 2 seeds)" in text and "### prior: F1 of y" in text
    assert "| **a** | 0.33 ± 0.00 | 0.00 ± 0.00 | 0.50 ± 0.00 |" in text
    assert "| **b** | 0.20 ± 0.00 | 0.80 ± 0.00 | 0.33 ± 0.00 |" in text
    assert "| a ↔ b | 7 | 0.33 | -0.17 | 0.33 | 0.33 |" in text


def test_cross_coders_needs_named_coders_and_two_of_them():
    with pytest.raises(DataError, match="two or more coders"):
        coders_of([e for e in EXAMPLES if e.coder == "a"])
    with pytest.raises(DataError, match="needs the coder of every segment"):
        coders_of([*EXAMPLES, Example("z", "text", (), None)])


def test_cli_cross_coders_end_to_end_with_tfidf(tmp_path, segments, capsys):
    """Three coders on the 36 fixture segments: a codes all, b every second (dropping one code),
    c every third; TF-IDF models, two seeds."""
    import json

    rows = []
    for i, segment in enumerate(segments):
        rows.append({**segment, "coder": "a"})
        if i % 2 == 0:
            rows.append({**segment, "coder": "b", "codes": segment["codes"][:1]})
        if i % 3 == 0:
            rows.append({**segment, "coder": "c"})
    data = tmp_path / "three.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out"
    command = ["simulate", "--cross-coders", "--data", str(data), "--out", str(out), "--kind", "tfidf"]
    assert main([*command, "--seeds", "1,2", "--test-fraction", "0.4"]) == 0
    transfer = pd.read_csv(out / "cross_coders.csv")
    assert set(zip(transfer.train_coder, transfer.test_coder, strict=True)) == {
        (a, b) for a in "abc" for b in "abc"
    }
    assert sorted(transfer.seed.unique()) == [1, 2] and transfer.macro_f1.between(0, 1).all()
    pairs = pd.read_csv(out / "coder_pairs.csv")
    assert pairs.set_index(["coder", "against"]).loc[("a", "c"), "macro_f1"] == 1.0, "c copies a"
    summary = (out / "cross_coders.md").read_text()
    assert "trained on ↓ / tested on →" in summary and "| a ↔ c | 12 | 1.00 | 1.00 |" in summary
    assert (out / "cross_coders.png").stat().st_size > 10_000
    assert main([*command, "--test", str(data)]) == 2
    assert "drop --test" in capsys.readouterr().err
    one_coder = tmp_path / "one.jsonl"
    one_coder.write_text((FIXTURES / "segments.jsonl").read_text())
    assert (
        main(["simulate", "--cross-coders", "--data", str(one_coder), "--out", str(out), "--kind", "tfidf"])
        == 2
    )
    assert "two or more coders" in capsys.readouterr().err


def test_a_coder_too_few_to_train_on_leaves_an_empty_row_and_an_empty_side_is_refused():
    from backend.learning.base import TrainingDataError

    def refuse_c(config, seed, texts, labels, codes):
        if len(texts) < 3:  # c's two training segments
            raise TrainingDataError("need more")
        return prior_model(config, seed, texts, labels, codes)

    config = SimConfig("prior", "tfidf", None)
    rows = transfer_rows([config], [1], EXAMPLES, ["x", "y"], 0.5, refuse_c, split=by_id)
    assert {r["train_coder"] for r in rows} == {"a", "b"} and len(rows) == 6
    with pytest.raises(DataError, match="left the test side empty"):
        transfer_rows([config], [1], EXAMPLES, ["x", "y"], 0.5, prior_model, split=lambda e, f, s: (e, []))


def test_cli_cross_coders_takes_tfidf_beside_the_base_bodys_embeddings(tmp_path, segments, model_path):
    """FEATURES=tfidf+embeddings in a grid entry: the head of a SetFit model on the base body sees
    TF-IDF beside the embeddings (its lexicon fitted on the training coder's segments)."""
    import json

    rows = [{**s, "coder": "a"} for s in segments] + [{**s, "coder": "b"} for s in segments[::2]]
    data = tmp_path / "two.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        f"- {{name: base-tfidf, kind: setfit, model_name: '{model_path}', setfit_max_steps: 0, "
        "max_length: 64, features: tfidf+embeddings}\n"
    )
    out = tmp_path / "out"
    command = ["simulate", "--cross-coders", "--data", str(data), "--grid", str(grid), "--out", str(out)]
    assert main([*command, "--seeds", "1", "--test-fraction", "0.4"]) == 0
    transfer = pd.read_csv(out / "cross_coders.csv")
    assert set(transfer.config) == {"base-tfidf"} and transfer.macro_f1.between(0, 1).all()
