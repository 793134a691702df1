"""Per-code monitoring: rare codes, cross-validated figures and the stopping signal."""

import numpy as np
import pytest

from backend.learning.heads import HeadOptions
from backend.learning.quality import cross_validated_report, label_counts, out_of_fold_decisions, rare_codes
from backend.learning.stopping import stopping_signal


def test_rare_codes_are_those_below_the_minimum():
    matrix = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0]])
    assert label_counts(matrix, ["a", "b", "c"]) == {"a": 3, "b": 1, "c": 0}
    assert rare_codes(matrix, ["a", "b", "c"], minimum=2) == {"b": 1, "c": 0}
    assert rare_codes(np.zeros((0, 2)), ["a", "b"], minimum=1) == {"a": 0, "b": 0}


def test_cross_validated_report_per_code():
    rng = np.random.default_rng(0)
    separable = np.repeat([0, 1], 10)
    noise = rng.normal(size=(20, 4))
    embeddings = noise + np.outer(separable, [6, 0, 0, 0])
    matrix = np.column_stack([separable, np.eye(20, dtype=int)[0]])  # code b: one positive only
    decisions = out_of_fold_decisions(embeddings, matrix, np.array([0.5, 0.5]), HeadOptions(seed=7))
    assert np.isnan(decisions[:, 1]).all() and set(decisions[:, 0]) == {0.0, 1.0}
    report = cross_validated_report(matrix, decisions, ["a", "b"])
    assert report["codes"]["a"]["f1"] == pytest.approx(1.0) and report["codes"]["a"]["positives"] == 10
    assert report["codes"]["b"] == {"precision": None, "recall": None, "f1": None, "positives": 1}
    assert report["macro"]["f1"] == pytest.approx(1.0) and report["codes_estimated"] == 1
    assert "out-of-fold" in report["method"]


@pytest.mark.parametrize("kind", ["logistic", "chain"])
def test_a_tasks_rows_share_a_fold_so_no_head_sees_the_segment_it_predicts(kind):
    """MULTI_CODER_RULE=per_coder: two coders' rows of one task. Each task has a feature of its own,
    so a head that saw a task's other row would know its label; grouped by task, it cannot."""
    tasks = np.repeat(np.arange(12), 2)
    features = np.eye(12)[tasks]
    target = np.tile([1, 1, 0, 0], 6)  # task 0: both coders 1, task 1: both 0, ...
    options = HeadOptions(seed=0, kind=kind)
    leaky = out_of_fold_decisions(features, target[:, None], np.array([0.5]), options)
    grouped = out_of_fold_decisions(features, target[:, None], np.array([0.5]), options, groups=tasks)
    assert (grouped[0::2] == grouped[1::2]).all()  # one answer per task
    assert (grouped[:, 0] == target).mean() <= 0.5  # no better than a coin: nothing to learn from
    assert (leaky[:, 0] == target).mean() >= 0.75  # memorised through the twin row


def test_stopping_signal_compares_tasks_unlabeled_in_both_rounds():
    before = (np.array([1, 2, 3, 4]), np.array([[1, 0], [0, 1], [0, 0], [1, 1]]))
    now = (np.array([2, 3, 4, 5]), np.array([[0, 1], [1, 0], [1, 1], [0, 0]]))  # task 3 changed
    signal = stopping_signal(before, now, threshold=0.4)
    assert signal == {
        "tasks_compared": 3,
        "changed": 1,
        "changed_share": pytest.approx(1 / 3),
        "threshold": 0.4,
        "stop": True,
    }
    assert stopping_signal(before, now, threshold=0.3)["stop"] is False
    assert stopping_signal(before, (np.array([9]), np.array([[1, 0]])), threshold=0.1) is None


@pytest.mark.parametrize("threshold", [0.0, 0.01, 0.1, 0.25, 0.5])
def test_the_stop_rule_is_small_texts_classification_change_on_code_sets(threshold):
    """Given sparse rows, small-text's criterion compares each task's whole code set (dense arrays
    it compares cell by cell, against the number of rows: 'stop' with half of the tasks changed)."""
    from scipy.sparse import csr_matrix
    from small_text.stopping_criteria import ClassificationChange

    rng = np.random.default_rng(int(threshold * 100))
    ids = np.arange(200)
    before = rng.integers(0, 2, size=(200, 5))
    for flipped in (0, 1, 2, 10, 20, 50, 100, 200):
        now = before.copy()
        now[:flipped, rng.integers(0, 5)] ^= 1
        library = ClassificationChange(num_classes=5, threshold=threshold)
        library.stop(predictions=csr_matrix(before))
        expected = library.stop(predictions=csr_matrix(now))
        signal = stopping_signal((ids, before), (ids, now), threshold)
        assert signal["changed"] == flipped and signal["stop"] is expected, (flipped, threshold)


def test_dense_decisions_would_fool_small_texts_criterion():
    from small_text.stopping_criteria import ClassificationChange

    before = np.zeros((10, 5), dtype=int)
    after = before.copy()
    after[:5, 0] = 1  # half of the tasks gained a code
    library = ClassificationChange(num_classes=5, threshold=0.01)
    library.stop(predictions=before)
    assert library.stop(predictions=after) is True  # 45 unchanged cells >= 10 rows
    assert stopping_signal((np.arange(10), before), (np.arange(10), after), threshold=0.01)["stop"] is False
