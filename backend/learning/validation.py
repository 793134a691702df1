"""Estimates on a blind validation sample: how good the model's decisions are on the segments nobody
coded, and how often each code occurs in the whole corpus, each with a 95 % interval and its n.

The sample is a uniform random draw from the segments uncoded when it was drawn, coded without a
suggestion, so figures on it are unbiased for those segments; figures on the actively chosen labels
are not (they stay on the status page as the optimistic cross-validated ones). Proportions get
Wilson intervals (statsmodels), F1 a percentile bootstrap, corpus prevalence a
prediction-powered interval (ppi-python, Angelopoulos et al. 2023) beside the classical one from the
sample alone. Pure: arrays in, values out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A figure, its 95 % interval and the number of segments behind it (None: nothing to estimate on)."""

    estimate: float | None
    low: float | None
    high: float | None
    n: int


def proportion(successes: int, n: int, method: str = "wilson") -> Interval:
    """`successes` of `n` with a Wilson (or "beta": Clopper–Pearson) interval."""
    from statsmodels.stats.proportion import proportion_confint

    if n <= 0:
        return Interval(None, None, None, 0)
    low, high = proportion_confint(successes, n, alpha=1 - CONFIDENCE, method=method)
    share = successes / n  # the bounds hold it (statsmodels' Wilson bound of 0 of n is 5.6e-17)
    return Interval(share, min(float(low), share), max(float(high), share), n)


def size_for_width(width: float) -> int:
    """The sample size whose 95 % interval for a share is at most `width` wide however common the
    share is (the worst case, one half; statsmodels' normal approximation)."""
    from statsmodels.stats.proportion import samplesize_confint_proportion

    if not 0 < width < 1:
        raise ValueError(f"an interval's width lies between 0 and 1, not {width}")
    return math.ceil(samplesize_confint_proportion(0.5, width / 2, alpha=1 - CONFIDENCE))


def f1_score(truth: np.ndarray, decided: np.ndarray, axis: int = -1) -> np.ndarray:
    """F1 of boolean decisions against the truth along `axis` (NaN where neither has a positive)."""
    tp = np.sum(truth & decided, axis=axis)
    wrong = np.sum(truth != decided, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 2 * tp / (2 * tp + wrong)


def f1_interval(truth: np.ndarray, decided: np.ndarray, seed: int = 0) -> Interval:
    """F1 on the sample with a percentile bootstrap interval over its segments, resampled in pairs
    (numpy, not scipy.stats.bootstrap: a resample without any positive has no F1 and is left out,
    where scipy's interval would turn NaN)."""
    truth, decided = np.asarray(truth, bool), np.asarray(decided, bool)
    estimate = float(f1_score(truth, decided))
    if math.isnan(estimate):
        return Interval(None, None, None, len(truth))
    rows = np.random.default_rng(seed).integers(0, len(truth), size=(RESAMPLES, len(truth)))
    values = f1_score(truth[rows], decided[rows], axis=1)
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(values[~np.isnan(values)], [tail, 100 - tail])
    return Interval(estimate, float(low), float(high), len(truth))


@dataclass(frozen=True)
class Prevalence:
    """A code's share of the whole corpus: the coded segments counted, the rest estimated by
    prediction-powered inference (`ppi`) or from the validation sample alone (`classical`)."""

    ppi: Interval
    classical: Interval


@dataclass(frozen=True)
class Corpus:
    """What is known beyond the sample: segments coded outside it (`coded`, of them `coded_positives`
    per code) and the model's probabilities for the uncoded segments outside it (`rest_proba`)."""

    coded: int
    coded_positives: np.ndarray
    rest_proba: np.ndarray


def prevalence(
    truth: np.ndarray, proba: np.ndarray, rest: np.ndarray, coded: int, positives: int
) -> Prevalence:
    """One code's corpus prevalence. `truth` and `proba` are the sample's codes and the model's
    probabilities, `rest` the probabilities of the other uncoded segments; the uncoded share of the
    corpus is estimated, the coded one (`positives` of `coded`) counted, and both intervals scaled."""
    from ppi_py import ppi_mean_ci, ppi_mean_pointestimate

    truth, proba, rest = (np.asarray(a, float) for a in (truth, proba, rest))
    uncoded = len(truth) + len(rest)
    total = coded + uncoded

    def corpus(share: float | None) -> float | None:
        return None if share is None else (positives + uncoded * share) / total

    classical = proportion(int(truth.sum()), len(truth))
    classical = Interval(
        corpus(classical.estimate), corpus(classical.low), corpus(classical.high), len(truth)
    )
    if len(truth) < 2 or not len(rest):
        return Prevalence(Interval(None, None, None, len(truth)), classical)
    low, high = (bound[0] for bound in ppi_mean_ci(truth, proba, rest, alpha=1 - CONFIDENCE))
    share = ppi_mean_pointestimate(truth, proba, rest)[0]
    share, low, high = (float(v) for v in np.clip([share, low, high], 0.0, 1.0))  # a share stays one
    ppi = Interval(corpus(share), corpus(low), corpus(high), len(truth))
    return Prevalence(ppi, classical)


@dataclass(frozen=True)
class CodeEstimate:
    """A code's figures on the validation sample: the model's precision, recall and F1 there, and the
    corpus prevalence."""

    precision: Interval
    recall: Interval
    f1: Interval
    prevalence: Prevalence

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def of(cls, figures: dict) -> CodeEstimate:
        """An estimate as `as_dict` wrote it."""
        prevalence = figures["prevalence"]
        return cls(
            Interval(**figures["precision"]),
            Interval(**figures["recall"]),
            Interval(**figures["f1"]),
            Prevalence(Interval(**prevalence["ppi"]), Interval(**prevalence["classical"])),
        )


@dataclass(frozen=True)
class Sample:
    """The coded validation segments: their codes (segments × codes, boolean), and the model's
    decisions and probabilities for them."""

    truth: np.ndarray
    decided: np.ndarray
    proba: np.ndarray


def estimate_codes(
    codes: list[str], sample: Sample, corpus: Corpus, seed: int = 0
) -> dict[str, CodeEstimate]:
    """Every code's estimate on the sample (`seed` for the bootstrap)."""
    truth, decided = np.asarray(sample.truth, bool), np.asarray(sample.decided, bool)
    found = {}
    for j, code in enumerate(codes):
        t, d = truth[:, j], decided[:, j]
        found[code] = CodeEstimate(
            precision=proportion(int((t & d).sum()), int(d.sum())),
            recall=proportion(int((t & d).sum()), int(t.sum())),
            f1=f1_interval(t, d, seed),
            prevalence=prevalence(
                t, sample.proba[:, j], corpus.rest_proba[:, j], corpus.coded, int(corpus.coded_positives[j])
            ),
        )
    return found


@dataclass(frozen=True)
class Verdict:
    """Whether a code may be handed to the model at the lead's targets, and why not: each figure
    below its target, and roughly how many more validation segments would likely close the gap
    (None: more segments would not, the figure itself is below its target)."""

    code: str
    accepted: bool
    short: list[str]
    more_segments: int | None


def verdict(code: str, estimate: CodeEstimate, min_precision: float, min_recall: float) -> Verdict:
    """Accept a code only where the lower bounds of precision and recall reach the targets."""
    short, more = [], 0
    for name, figure, target, rate in (
        ("precision", estimate.precision, min_precision, _rate_of(estimate, "precision")),
        ("recall", estimate.recall, min_recall, _rate_of(estimate, "recall")),
    ):
        if figure.low is not None and figure.low >= target:
            continue
        if figure.estimate is None:
            short.append(f"{name}: no segment of the sample to estimate it on (target {target:.2f})")
            more = None
            continue
        short.append(
            f"{name} {figure.estimate:.2f} (95 % interval {figure.low:.2f}–{figure.high:.2f}, "
            f"n={figure.n}) is below {target:.2f}{_why_more_would_not_do(figure.estimate, target)}"
        )
        needed = more_needed(figure, target)
        more = None if needed is None or more is None else max(more, math.ceil(needed / rate))
    return Verdict(code, not short, short, None if not short else more)


def more_needed(figure: Interval, target: float, limit: int = 100_000) -> int | None:
    """How many more segments behind `figure` would lift its Wilson lower bound to `target` if the
    share stayed what it is; None when the share itself is below the target."""
    share = figure.estimate
    if share is None or share < target or (share == target and target < 1):
        return None
    n = max(figure.n, 1)
    while n <= limit:
        if proportion(round(share * n), n).low >= target:
            return n - figure.n
        n = math.ceil(n * 1.1) + 1
    return None


def _why_more_would_not_do(share: float, target: float) -> str:
    """Why more validation segments would not lift a lower bound to the target, if they would not."""
    if target >= 1:
        return ", which no sample's lower bound reaches: choose a target below 1"
    if share < target:
        return ", and so is the estimate itself"
    return ""


def _rate_of(estimate: CodeEstimate, name: str) -> float:
    """Which share of the validation segments count for `name`'s n (the predicted positives for
    precision, the true positives for recall), at least one segment in the sample."""
    sample = estimate.f1.n
    figure = estimate.precision if name == "precision" else estimate.recall
    return max(figure.n, 1) / max(sample, 1)
