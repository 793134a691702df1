"""Evidence by occlusion: units of a segment, and the unit whose removal drops a code most."""

import numpy as np

from backend.learning.evidence import find_evidence, text_units, without


def keyword_model(words_by_code: list[str], calls: list[int] | None = None):
    """p(code) = 0.9 when its word is in the text, else 0.1."""

    def score(texts: list[str]) -> np.ndarray:
        if calls is not None:
            calls.append(len(texts))
        return np.array([[0.9 if word in text else 0.1 for word in words_by_code] for text in texts])

    return score


def units(text: str) -> list[str]:
    """The units of a text, as text."""
    return [text[a:b] for a, b in text_units(text)]


def test_units_are_clauses_and_a_long_clause_is_cut_into_pieces():
    text = "Ich bin oft müde, weil ich schlecht schlafe.\nDann spiele ich."
    assert units(text) == ["Ich bin oft müde,", "weil ich schlecht schlafe.", "Dann spiele ich."]
    long = " ".join(f"w{i}" for i in range(20))
    pieces = units(long)
    assert len(pieces) == 3 and " ".join(pieces) == long and all(len(p.split()) <= 8 for p in pieces)
    assert text_units("   ") == [] and text_units("Ein Satz.") == [(0, 9)]
    assert units("I had a bad cough and a fever last winter.") == [
        "I had a",
        "bad cough and a",
        "fever last winter.",
    ]


def test_removing_a_unit_leaves_one_space():
    assert without("a b, c d. e", 5, 9) == "a b, e"


def test_each_suggested_code_gets_the_unit_that_carries_it_in_one_scoring_call():
    texts = ["Mir tut der Bauch weh, aber ich bin froh. Ich spiele Fußball.", "Nur ein Satz mit Bauch."]
    calls = []
    score = keyword_model(["Bauch", "froh", "Fußball"], calls)
    proba = score(texts)
    calls.clear()
    suggested = np.array([[True, True, False], [True, False, False]])
    spans = find_evidence(texts, proba, suggested, score)
    assert calls == [3], "the three units of the first segment, in one call; one unit: no evidence"
    found = {(s.code, s.text) for s in spans[0]}
    assert found == {(0, "Mir tut der Bauch weh,"), (1, "aber ich bin froh.")}
    assert all(texts[0][s.start : s.end] == s.text and s.drop == 0.8 for s in spans[0])
    assert spans[1] == []


def test_a_code_that_no_removal_lowers_gets_no_span():
    texts = ["Es geht mir gut, sagt sie."]
    score = keyword_model(["Bauch"])  # 0.1 for every shortened text
    spans = find_evidence(texts, np.array([[0.6]]), np.array([[True]]), score)
    assert [(s.code, s.drop) for s in spans[0]] == [(0, 0.5)], "a drop: the first unit of the largest"
    assert find_evidence(texts, np.array([[0.05]]), np.array([[True]]), score) == [[]], "no drop: no span"
    assert find_evidence(texts, np.array([[0.105]]), np.array([[True]]), score) == [[]], "noise: no span"
    assert find_evidence(texts, np.array([[0.9]]), np.array([[False]]), score) == [[]], "not suggested"


def test_offsets_count_as_label_studios_do():
    text = "Ich lache 😀 viel, aber mein Bauch tut weh."
    [[span]] = find_evidence([text], np.array([[0.9]]), np.array([[True]]), keyword_model(["Bauch"]))
    assert span.text == "aber mein Bauch tut weh." and text.index(span.text) == 18
    assert (span.start, span.end) == (19, 43), "the emoji is two UTF-16 code units"


def test_ordinals_and_one_letter_abbreviations_do_not_end_a_clause():
    text = "Ich war z.B. am 1. Mai krank, dann ging es. Ende… Gut."
    assert units(text) == ["Ich war z.B. am 1. Mai krank,", "dann ging es.", "Ende…", "Gut."]
