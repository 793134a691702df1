"""Automation bias on hand-made annotations and suggestion writes, with hand-computed figures."""

from datetime import UTC, datetime, timedelta

import pytest

from backend.learning.bias import (
    ACCEPT_ALL_FLAG,
    MIN_JUDGED,
    SLACK,
    Shown,
    Started,
    Unjudged,
    automation_bias,
    blind_agreement,
    flagged,
    suggestion_seen,
)
from backend.learning.validation import CodeEstimate, Interval, Prevalence, proportion

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
CODES = ["a", "b"]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def shown(seconds: float, codes: str, prediction: int = 100, version: str = "v1") -> Shown:
    return Shown(at(seconds), prediction, version, frozenset(codes))


def started(coder: str, task: int, codes: str, parent: int | None = 100, start: float | None = 60) -> Started:
    return Started(coder, task, frozenset(codes), parent, None if start is None else at(start))


def test_the_suggestion_seen_is_the_write_live_when_the_coder_started_not_the_one_now():
    writes = [shown(0, "a", version="v1"), shown(120, "b", version="v2")]  # rewritten while the task was open
    assert suggestion_seen(started("c", 1, "a", start=60), writes) == writes[0]
    assert suggestion_seen(started("c", 1, "b", start=300), writes) == writes[1]


@pytest.mark.parametrize(
    "annotation, reason",
    [
        (started("c", 1, "a", parent=None), Unjudged.NO_SUGGESTION),
        (started("c", 1, "a", start=None), Unjudged.NO_START),
        (started("c", 1, "a", parent=999), Unjudged.NOT_RECORDED),  # not a prediction we wrote
        (started("c", 1, "a", start=-30), Unjudged.NOT_RECORDED),  # started before the first known write
        (started("c", 1, "a", start=121), Unjudged.AMBIGUOUS),  # a write with other codes 1 s before
    ],
)
def test_an_annotation_whose_suggestion_is_not_known_says_why(annotation, reason):
    writes = [shown(0, "a"), shown(120, "b")]
    assert suggestion_seen(annotation, writes) == reason


def test_a_write_close_to_the_start_that_suggested_the_same_codes_leaves_nothing_open():
    writes = [shown(0, "a", version="v1"), shown(120, "a", version="v2")]  # a new version, same codes
    assert suggestion_seen(started("c", 1, "a", start=121), writes).codes == frozenset("a")
    assert timedelta(seconds=2) == SLACK


def test_per_coder_and_code_kept_added_removed_and_the_unchanged_share_with_wilson_intervals():
    writes = {task: [shown(0, "a", prediction=task)] for task in range(1, 6)}
    annotations = [
        started("coder-1", 1, "a", parent=1),  # kept
        started("coder-1", 2, "ab", parent=2),  # added b
        started("coder-1", 3, "", parent=3),  # removed a
        started("coder-1", 4, "a", parent=4),  # kept
        started("coder-2", 5, "a", parent=5),  # kept
        started("coder-2", 6, "b", parent=None),  # no suggestion: unjudged
        started("coder-2", 7, "b", parent=70),  # a prediction the log does not know
    ]
    report = automation_bias(annotations, writes, CODES)
    one = report.coders["coder-1"]
    assert one.judged == 4 and one.unchanged == proportion(2, 4) and not one.flagged
    assert (
        one.codes["a"]["suggested"] == 4 and one.codes["a"]["removed"] == 1 and one.codes["a"]["added"] == 0
    )
    assert one.codes["a"]["kept"]["estimate"] == 0.75 and one.codes["a"]["kept"]["n"] == 4
    assert one.codes["b"] == {"suggested": 0, "added": 1, "removed": 0, "kept": vars(proportion(3, 4))}
    low, high = one.codes["a"]["kept"]["low"], one.codes["a"]["kept"]["high"]
    assert low == pytest.approx(0.3006, abs=1e-4) and high == pytest.approx(
        0.9544, abs=1e-4
    )  # Wilson, 3 of 4
    two = report.coders["coder-2"]
    assert two.judged == 1 and two.unjudged == {"no_suggestion": 1, "suggestion_not_recorded": 1}
    assert report.judged == 5 and report.unjudged == {"no_suggestion": 1, "suggestion_not_recorded": 1}
    assert report.codes["a"]["kept"]["estimate"] == 0.8 and report.codes["a"]["blind"] is None
    assert report.as_dict()["flag_rule"] == {"unchanged_at_least": 0.95, "judged_at_least": 20}


def test_a_coder_who_keeps_nearly_every_suggestion_is_flagged_only_over_enough_annotations():
    assert (ACCEPT_ALL_FLAG, MIN_JUDGED) == (0.95, 20)
    assert flagged(19, 20) and flagged(20, 20) and not flagged(18, 20)
    assert not flagged(19, 19), "too few annotations to tell"
    writes = {task: [shown(0, "a", prediction=task)] for task in range(40)}
    keeps = [started("coder-1", task, "a", parent=task) for task in range(20)]
    changes = [started("coder-2", task, "b" if task % 2 else "a", parent=task) for task in range(20, 40)]
    report = automation_bias(keeps + changes, writes, CODES)
    assert report.coders["coder-1"].flagged and not report.coders["coder-2"].flagged


def estimate(tp: int, fp: int, fn: int, n: int) -> CodeEstimate:
    none = Interval(None, None, None, n)
    return CodeEstimate(proportion(tp, tp + fp), proportion(tp, tp + fn), none, Prevalence(none, none))


def test_blind_agreement_is_recovered_from_the_counts_behind_the_validation_estimates():
    # 10 blind segments: the model said yes on 4 (3 of them right), the coders on 5: 1 + 2 disagree
    assert blind_agreement(estimate(3, 1, 2, 10)) == proportion(7, 10)
    assert blind_agreement(estimate(0, 0, 0, 6)) == proportion(6, 6), "nobody and no model said yes"
    assert blind_agreement(estimate(0, 2, 1, 6)) == proportion(3, 6)


def test_validation_tasks_are_counted_apart_as_blind_and_their_agreement_shown_beside():
    writes = {1: [shown(0, "a", prediction=1)], 2: [shown(0, "", prediction=2)]}
    annotations = [started("coder-1", 1, "a", parent=1), started("coder-1", 2, "b", parent=2)]
    blind = {"a": estimate(3, 1, 2, 10), "b": estimate(1, 0, 0, 10)}
    report = automation_bias(annotations, writes, CODES, frozenset({2}), blind)
    assert report.blind == 1 and report.judged == 1, "the blind task's empty prediction is no suggestion"
    assert report.codes["a"]["kept"] == vars(proportion(1, 1))
    assert report.codes["a"]["blind"] == vars(proportion(7, 10))
    assert report.codes["b"]["blind"] == vars(proportion(10, 10))
