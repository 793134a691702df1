"""The validation estimators against values computed by hand and fixtures whose answer is known."""

import math

import numpy as np
import pytest

from backend.learning.validation import (
    CodeEstimate,
    Corpus,
    Interval,
    Prevalence,
    Sample,
    estimate_codes,
    f1_interval,
    more_needed,
    prevalence,
    proportion,
    size_for_width,
    verdict,
)

Z = 1.959964


def wilson(k: int, n: int) -> tuple[float, float]:
    """The Wilson interval written out: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    p = k / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / (1 + Z**2 / n)
    return centre - half, centre + half


def test_a_wilson_interval_is_the_one_computed_by_hand():
    found = proportion(8, 10)
    assert (found.estimate, found.n) == (0.8, 10)
    assert (found.low, found.high) == pytest.approx(wilson(8, 10), abs=1e-6)
    assert (found.low, found.high) == pytest.approx((0.4902, 0.9433), abs=1e-4)


def test_clopper_pearson_of_no_success_reaches_one_minus_the_root_of_alpha_half():
    found = proportion(0, 10, method="beta")
    assert found.low == 0.0
    assert found.high == pytest.approx(1 - 0.025 ** (1 / 10), abs=1e-6)


def test_the_bounds_of_none_or_all_hold_the_share_exactly():
    assert proportion(0, 4).low == 0.0 and proportion(4, 4).high == 1.0


def test_a_size_for_a_width_is_z_squared_over_the_half_width_squared_at_one_half():
    assert size_for_width(0.1) == math.ceil(Z**2 * 0.25 / 0.05**2) == 385
    low, high = wilson(192, 385)
    assert high - low <= 0.1
    with pytest.raises(ValueError, match="between 0 and 1"):
        size_for_width(1.5)


def test_a_proportion_of_nothing_has_no_estimate():
    assert proportion(0, 0) == Interval(None, None, None, 0)


def test_f1_is_two_true_positives_over_two_plus_the_mistakes_and_its_bootstrap_holds_it():
    truth = np.array([1, 1, 1, 0, 0] * 8, bool)
    decided = np.array([1, 1, 0, 1, 0] * 8, bool)
    found = f1_interval(truth, decided, seed=3)
    assert found.estimate == pytest.approx(2 / 3)
    assert 0 < found.low < 2 / 3 < found.high < 1
    assert found.n == 40
    assert f1_interval(truth, decided, seed=3) == found  # seeded: the same interval again


def test_perfect_decisions_have_f1_one_and_a_code_never_present_nor_predicted_has_none():
    truth = np.array([1, 0, 1, 0], bool)
    assert f1_interval(truth, truth) == Interval(1.0, 1.0, 1.0, 4)
    assert f1_interval(np.zeros(4, bool), np.zeros(4, bool)).estimate is None


def test_prevalence_with_perfect_predictions_is_as_sure_as_coding_every_uncoded_segment():
    """Known answer: 30 % of 1,100 uncoded segments carry the code and the model knows which; 20 of
    100 coded ones do. PPI then equals the classical interval on all 1,100 segments."""
    sample = np.array([1] * 30 + [0] * 70, float)
    rest = np.array([1] * 300 + [0] * 700, float)
    found = prevalence(sample, sample, rest, coded=100, positives=20)
    half = Z * math.sqrt(0.3 * 0.7 / 1100)
    corpus = lambda share: (20 + 1100 * share) / 1200  # noqa: E731
    assert found.ppi.estimate == pytest.approx(corpus(0.3))
    assert (found.ppi.low, found.ppi.high) == pytest.approx(
        (corpus(0.3 - half), corpus(0.3 + half)), abs=1e-5
    )
    low, high = wilson(30, 100)
    assert (found.classical.low, found.classical.high) == pytest.approx((corpus(low), corpus(high)), abs=1e-5)
    assert found.ppi.high - found.ppi.low < found.classical.high - found.classical.low
    assert found.ppi.n == found.classical.n == 100


def test_prevalence_with_a_useless_model_is_corrected_to_the_sample():
    """A model that says "yes" to everything: PPI falls back on the sample (its CLT interval)."""
    sample = np.array([1] * 30 + [0] * 70, float)
    found = prevalence(sample, np.ones(100), np.ones(1000), coded=0, positives=0)
    half = Z * math.sqrt(0.3 * 0.7 / 100)
    assert found.ppi.estimate == pytest.approx(0.3)
    assert (found.ppi.low, found.ppi.high) == pytest.approx((0.3 - half, 0.3 + half), abs=1e-5)


def test_estimates_per_code_count_the_decisions_on_the_sample():
    truth = np.array([[1, 0], [1, 0], [0, 1], [0, 0], [1, 1]], bool)
    decided = np.array([[1, 0], [0, 0], [0, 1], [1, 0], [1, 0]], bool)
    corpus = Corpus(coded=10, coded_positives=np.array([4, 1]), rest_proba=np.full((20, 2), 0.5))
    found = estimate_codes(["a", "b"], Sample(truth, decided, decided.astype(float)), corpus)
    a = found["a"]
    assert (a.precision.estimate, a.precision.n) == (2 / 3, 3)  # 2 of 3 predicted are right
    assert (a.recall.estimate, a.recall.n) == (2 / 3, 3)  # 2 of 3 true ones found
    assert found["b"].precision.estimate == 1.0 and found["b"].recall.estimate == 0.5
    assert found["a"].prevalence.classical.estimate == pytest.approx((4 + 25 * 3 / 5) / 35)


def estimate(precision: Interval, recall: Interval, sample: int = 100) -> CodeEstimate:
    nothing = Interval(None, None, None, sample)
    return CodeEstimate(precision, recall, nothing, Prevalence(nothing, nothing))


def test_a_code_whose_lower_bounds_reach_the_targets_is_accepted():
    found = verdict("a", estimate(proportion(95, 100), proportion(90, 100)), 0.85, 0.8)
    assert found.accepted and found.short == [] and found.more_segments is None


def test_a_lower_bound_below_target_is_refused_naming_the_figures_and_the_segments_that_would_do():
    found = verdict("a", estimate(proportion(95, 100), proportion(90, 100)), 0.9, 0.8)
    assert not found.accepted
    assert found.short == ["precision 0.95 (95 % interval 0.89–0.98, n=100) is below 0.90"]
    needed = found.more_segments
    assert needed > 0 and proportion(round(0.95 * (100 + needed)), 100 + needed).low >= 0.9


def test_more_segments_cannot_lift_a_share_below_its_target():
    found = verdict("a", estimate(proportion(80, 100), proportion(95, 100)), 0.9, 0.8)
    assert not found.accepted and found.more_segments is None
    assert found.short[0].endswith("is below 0.90, and so is the estimate itself")
    assert more_needed(proportion(80, 100), 0.9) is None


def test_a_target_of_one_is_refused_saying_no_sample_reaches_it_not_that_the_estimate_is_below():
    """All 4 right: the estimate is 1.00, its Wilson lower bound 0.51; no sample's bound reaches 1."""
    found = verdict("a", estimate(proportion(4, 4), proportion(4, 4), sample=5), 1.0, 0.5)
    assert not found.accepted and found.more_segments is None
    assert found.short == [
        "precision 1.00 (95 % interval 0.51–1.00, n=4) is below 1.00, which no sample's lower bound "
        "reaches: choose a target below 1"
    ]


def test_more_needed_scales_with_the_share_of_the_sample_the_figure_rests_on():
    """Recall rests on the true positives: 20 of a 100-segment sample, so five segments per one more."""
    recall = proportion(19, 20)
    found = verdict("a", estimate(proportion(99, 100), recall, sample=100), 0.5, 0.9)
    assert found.more_segments == math.ceil(more_needed(recall, 0.9) * 5)
