"""Coder-aware training examples: who coded what, and the rules for several coders on one task."""

import pytest

from backend.domain.annotations import CoderAnswer, coder_answers, coder_name, combine, training_examples
from backend.domain.scheme import parse_label_config
from backend.domain.tasks import Task

SCHEME = parse_label_config(
    '<View><Text name="text" value="$text"/><Choices name="codes" toName="text" choice="multiple">'
    '<Choice value="a"/><Choice value="b"/><Choice value="c"/></Choices></View>'
)
EMAILS = {1: "Ann@Example.org", 2: "bob@example.org", 3: "cem@example.org"}


def annotation(id_, user, codes, when, cancelled=False):
    result = [{"from_name": "codes", "to_name": "text", "type": "choices", "value": {"choices": codes}}]
    return {"id": id_, "completed_by": user, "result": result, "updated_at": when, "was_cancelled": cancelled}


def answer(coder, codes, when="1"):
    return CoderAnswer(1, coder, frozenset(codes), when)


def test_coders_are_named_by_email_whatever_label_studio_sends():
    assert coder_name({"completed_by": 1}, EMAILS) == "ann@example.org"
    assert coder_name({"completed_by": {"id": 2, "email": "Bob@Example.org"}}, EMAILS) == "bob@example.org"
    assert coder_name({"completed_by": 9}, EMAILS) == "user-9"
    assert coder_name({}, EMAILS) == "unknown"


def test_each_coder_counts_with_their_latest_submitted_annotation():
    task = Task(
        1,
        {"text": "t"},
        (
            annotation(1, 1, ["a"], "2026-01-01"),
            annotation(2, 1, ["b"], "2026-01-03"),  # Ann revised her answer
            annotation(3, 2, ["c"], "2026-01-02"),
            annotation(4, 2, ["a"], "2026-01-04", cancelled=True),  # a skip never counts
        ),
    )
    answers = coder_answers(task, SCHEME, EMAILS)
    assert [(a.coder, set(a.codes)) for a in answers] == [
        ("bob@example.org", {"c"}),
        ("ann@example.org", {"b"}),
    ]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("majority", [(("a", "c"), ("x", "y", "z"))]),  # a: 2 of 3 coders, b: 1 of 3, c: 2 of 3
        ("latest", [(("c",), ("z",))]),
        ("union", [(("a", "b", "c"), ("x", "y", "z"))]),
        ("per_coder", [(("a", "b"), ("x",)), (("a", "c"), ("y",)), (("c",), ("z",))]),
    ],
)
def test_rules_for_several_coders(rule, expected):
    answers = [answer("x", {"a", "b"}, "1"), answer("y", {"c", "a"}, "2"), answer("z", {"c"}, "3")]
    assert combine(answers, rule, ["a", "b", "c"]) == expected


def test_majority_tie_goes_to_the_latest_answer():
    older, newer = answer("x", {"a", "b"}, "1"), answer("y", {"a"}, "2")
    assert combine([older, newer], "majority", ["a", "b"]) == [(("a",), ("x", "y"))]
    assert combine([newer, older], "majority", ["a", "b"]) == [(("a", "b"), ("y", "x"))]


def test_train_coders_keeps_only_the_listed_coders_and_blank_texts_are_left_out():
    tasks = [
        Task(1, {"text": "one"}, (annotation(1, 1, ["a"], "1"), annotation(2, 2, ["b"], "2"))),
        Task(2, {"text": "two"}, (annotation(3, 2, ["c"], "1"),)),
        Task(3, {"text": "  "}, (annotation(4, 1, ["a"], "1"),)),
    ]
    examples, blank = training_examples(tasks, SCHEME, EMAILS, rule="majority", coders=["ANN@example.org"])
    assert [(e.task_id, e.codes, e.coders) for e in examples] == [(1, ("a",), ("ann@example.org",))]
    assert blank == 1
    everyone, _ = training_examples(tasks, SCHEME, EMAILS, rule="union")
    assert [(e.task_id, e.codes) for e in everyone] == [(1, ("a", "b")), (2, ("c",))]
