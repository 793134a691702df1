"""The one prediction builder: probabilities → Label Studio result items and predictions."""

import numpy as np
import pytest

from backend.domain.scheme import parse_label_config
from backend.resources import label_config
from backend.studio.predictions import build_predictions, empty_predictions, result_items
from tests.domain.test_scheme import TWO_TAGS


def test_predictions_are_written_per_tag():
    scheme = parse_label_config(TWO_TAGS, none_choices=())
    proba = np.array([0.9, 0.2, 0.6, 0.3, 0.4])
    results = result_items(scheme, proba, np.full(5, 0.5))
    assert [r["from_name"] for r in results] == ["topic", "mentioned"]
    assert results[0]["value"] == {"choices": ["health", "yes"]}
    assert results[1]["value"] == {"choices": ["no"]}  # single choice: its most probable option
    assert results[0]["score"] == pytest.approx((0.9 + 0.8 + 0.6) / 3)
    assert results[1]["score"] == pytest.approx(0.4)
    assert all(r["to_name"] == "answer" and r["type"] == "choices" for r in results)


@pytest.mark.parametrize(
    ("proba", "dimension", "frequency"),
    [
        ([0.1, 0.2, 0.1, 0.3, 0.2], ["none"], ["freq_not_mentioned"]),
        ([0.8, 0.2, 0.6, 0.3, 0.7], ["physical_health", "daily_functioning"], ["freq_mentioned"]),
    ],
)
def test_a_prediction_without_a_code_answers_none_of_these(proba, dimension, frequency):
    """The study form: "None of these" and the frequency question's "No" are checked exactly when
    none of their tag's codes is predicted, so every question gets an answer and "none" never
    comes with a code."""
    scheme = parse_label_config(label_config("interview_coding"))
    results = result_items(scheme, np.array(proba), np.full(5, 0.5))
    assert [r["value"]["choices"] for r in results] == [dimension, frequency]
    assert results[1]["score"] == pytest.approx(max(proba[4], 1 - proba[4]))
    assert scheme.codes_of(results) == [c for c in [*dimension, *frequency] if c in scheme.codes]


def test_per_code_thresholds_decide_multiple_choice():
    scheme = parse_label_config(label_config("generic_multilabel"))
    results = result_items(scheme, np.array([0.3, 0.3, 0.1]), np.array([0.25, 0.5, 0.5]))
    assert results[0]["value"]["choices"] == ["code_a"]


def test_predictions_name_their_task_for_import_and_not_for_predict():
    scheme = parse_label_config(label_config("generic_multilabel"))
    proba = np.array([[0.9, 0.1, 0.6], [0.2, 0.2, 0.2]])
    for_import = build_predictions(
        scheme, np.full(3, 0.5), "v2-x", proba, np.array([0.0, 1.0]), task_ids=[7, 3]
    )
    assert [(p["task"], p["score"], p["model_version"]) for p in for_import] == [
        (7, 0.0, "v2-x"),
        (3, 1.0, "v2-x"),
    ]
    assert for_import[0]["result"][0]["value"] == {"choices": ["code_a", "code_c"]}
    answers = build_predictions(scheme, np.full(3, 0.5), "v2-x", proba, np.array([0.0, 1.0]))
    assert "task" not in answers[0] and answers[0]["result"] == for_import[0]["result"]
    assert (
        empty_predictions("untrained", 2) == [{"result": [], "score": 0.0, "model_version": "untrained"}] * 2
    )


def test_predictions_are_made_when_first_read_and_kept():
    """A round ranks its whole pool but writes only the queue head: the rest is never built."""
    from backend.studio.predictions import Built

    made = []

    def make(i):
        made.append(i)
        return {"score": i}

    built = Built(make, 100_000)
    assert len(built) == 100_000 and made == []
    built[3]["score"] = -1
    assert built[3] == {"score": -1} and built[-1] == {"score": 99_999} and made == [3, 99_999]
    assert built[2:5] == [{"score": 2}, {"score": -1}, {"score": 4}] and made == [3, 99_999, 2, 4]
    with pytest.raises(IndexError):
        built[100_000]


def test_evidence_spans_become_regions_labelled_with_their_code_only_with_an_evidence_tag():
    from backend.learning.evidence import Span
    from backend.studio.predictions import WithEvidence

    text = "Mir tut der Bauch weh, aber ich bin froh."
    spans = [Span(0, 22, text[:22], 0, 0.4), Span(23, 41, text[23:], 1, 0.2)]
    proba = np.array([[0.9, 0.8, 0.1, 0.1, 0.1]] * 3)
    asked = []

    def spans_of(i):
        asked.append(i)
        return spans

    def built(scheme):
        return build_predictions(scheme, np.full(5, 0.5), "v1", proba, np.array([0.1, 0.2, 0.3]))

    with_tag = parse_label_config(label_config("interview_coding_evidence"))
    predictions = WithEvidence(with_tag, built(with_tag), spans_of, explained=[0, 2])
    assert len(predictions) == 3 and asked == [], "found when read, not before"
    first = predictions[0]
    assert predictions[:1] == [first] and asked == [0], "once per task"
    regions = [r for r in first["result"] if r["type"] == "labels"]
    assert [r["value"] for r in regions] == [
        {"start": 0, "end": 22, "text": "Mir tut der Bauch weh,", "labels": ["physical_health"]},
        {"start": 23, "end": 41, "text": "aber ich bin froh.", "labels": ["mental_health"]},
    ]
    assert all(r["from_name"] == "evidence" and r["to_name"] == "text" for r in regions)
    assert [r["score"] for r in regions] == [0.4, 0.2] and len({r["id"] for r in regions}) == 2
    rest = predictions[1:]
    assert asked == [0, 1], "the k-th explained prediction's spans are spans_of(k)"
    assert not any(r["type"] == "labels" for r in rest[0]["result"]), "only those explained"
    assert any(r["type"] == "labels" for r in rest[1]["result"])
    plain = parse_label_config(label_config("interview_coding"))
    without = WithEvidence(plain, built(plain), spans_of, explained=[0, 1])[0]
    assert {r["type"] for r in without["result"]} == {"choices"}


def test_the_codebook_start_checks_only_codes_very_like_their_definition():
    from backend.studio.predictions import codebook_predictions

    scheme = parse_label_config(label_config("interview_coding"))
    similarity = np.array([[0.8, 0.75, 0.2, 0.1, 0.9], [0.3, 0.2, 0.1, 0.1, 0.2]])
    first, second = codebook_predictions(scheme, similarity, 0.7, "v0-codebook-1", [7, 3])
    assert [r["value"]["choices"] for r in first["result"]] == [
        ["physical_health", "mental_health"],
        ["freq_mentioned"],
    ]
    assert [r["value"]["choices"] for r in second["result"]] == [[], []], "no 'none' checked either"
    assert (first["task"], first["score"]) == (7, 0.0) and (second["task"], second["score"]) == (3, 0.5)
    assert first["model_version"] == "v0-codebook-1"
