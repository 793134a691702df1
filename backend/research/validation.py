"""The blind validation sample, simulated (`simulate --validation`): what the live backend would have
estimated each round, beside what the simulation knows to be true, and how often the intervals
cover the truth.

The sample is a seeded uniform random draw from the pool segments left after the initial set (the
live backend draws from the segments uncoded once a first model exists), held out of training and
of the query. Every round's model is measured on it with the live backend's estimators
(learning/validation.py: Wilson intervals, bootstrap F1, prediction-powered prevalence), and the
same figures are counted where the codes are known:

- `test`: the test set, a random sample of the same kind of segments, independent of the sample
  and of training. An interval on the sample is for the model's precision (recall) on such
  segments; the test figure estimates the same quantity, but with its own sampling error, so a
  valid 95 % interval covers it *less* often than 95 %. `expected_coverage` says how often.
- `rest`: the pool segments neither labeled nor in the sample, the ones autocode would code (the
  live estimand). Active learning took the segments it was least sure of out of them, so they are
  not a random sample, and on 98 coded segments they are a handful.
- the corpus prevalence (the whole pool: labeled, sample and rest) is known exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backend.learning.validation import Corpus, Interval, Sample, estimate_codes, proportion

FIGURES = ("precision", "recall")
AGAINST = ("test", "rest")


def draw_sample(rng: np.random.Generator, size: int, pool_size: int, taken: Sequence[int]) -> list[int]:
    """`size` pool positions drawn uniformly from those not `taken` (the initial set), sorted."""
    free = sorted(set(range(pool_size)) - {int(i) for i in taken})
    return sorted(free[i] for i in rng.choice(len(free), size, replace=False))


def counts(known: Sample, j: int) -> dict[str, list[int]]:
    """Code `j`'s precision and recall on `known` as [successes, n]: true positives of the
    segments decided positive, and of the truly positive ones."""
    truth, decided = known.truth[:, j].astype(bool), known.decided[:, j].astype(bool)
    hits = int((truth & decided).sum())
    return {"precision": [hits, int(decided.sum())], "recall": [hits, int(truth.sum())]}


def measure(
    codes: Sequence[str], sample: Sample, test: Sample, rest: Sample, labeled: np.ndarray, seed: int
) -> dict:
    """One round: per code, the estimates on the sample (as the live backend computes them, with
    `labeled` the codes of the training segments, counted for prevalence), the counts on the test
    set and on the rest of the pool, and the pool's true prevalence."""
    corpus = Corpus(len(labeled), labeled.sum(axis=0), rest.proba)
    estimates = estimate_codes(list(codes), sample, corpus, seed)
    pool = np.concatenate([labeled, sample.truth, rest.truth]).astype(bool)
    return {
        code: {
            "estimate": estimates[code].as_dict(),
            "test": counts(test, j),
            "rest": counts(rest, j),
            "pool_prevalence": float(pool[:, j].mean()),
        }
        for j, code in enumerate(codes)
    }


def covers(interval: Interval, truth: float | None) -> bool | None:
    """Whether the interval holds the truth; None when either is missing (no interval, or nothing
    to count the truth on)."""
    if truth is None or interval.low is None or interval.high is None:
        return None
    return interval.low <= truth <= interval.high


@functools.lru_cache(maxsize=4096)
def _bounds(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson bounds for 0 … n successes of n (the estimators' own intervals)."""
    intervals = [proportion(k, n) for k in range(n + 1)]
    return np.array([i.low for i in intervals]), np.array([i.high for i in intervals])


def expected_coverage(sample: Sequence[int], truth: Sequence[int]) -> float:
    """How often a sample's Wilson interval would hold a share counted on an independent set, if
    both were binomial draws of one proportion (the pooled share of both): the coverage a valid
    interval has against a truth that is itself an estimate. `sample` and `truth` are
    [successes, n]; exact sums over both binomials."""
    from scipy.stats import binom

    (k_v, n_v), (k_t, n_t) = sample, truth
    share = (k_v + k_t) / (n_v + n_t)
    low, high = _bounds(n_v)
    shares = np.arange(n_t + 1) / n_t
    inside = (low[:, None] <= shares[None, :]) & (shares[None, :] <= high[:, None])
    return float(
        binom.pmf(np.arange(n_v + 1), n_v, share) @ inside @ binom.pmf(np.arange(n_t + 1), n_t, share)
    )


def long_rows(rows: Sequence[dict]) -> list[dict]:
    """One record per (configuration, seed, round, code, figure) of result rows that carry a
    `validation`: the interval on the sample, the share counted on the test set and on the rest,
    whether each is covered, and the coverage expected of a valid interval against each."""
    records = []
    for row in rows:
        for code, found in (row.get("validation") or {}).items():
            estimate = found["estimate"]
            where = {k: row[k] for k in ("config", "seed", "round", "n_labeled")} | {"code": code}
            for figure in FIGURES:
                records.append(
                    where | {"figure": figure} | _against(Interval(**estimate[figure]), found, figure)
                )
            pool = found["pool_prevalence"]
            for method in ("ppi", "classical"):
                interval = Interval(**estimate["prevalence"][method])
                record = where | {"figure": f"prevalence_{method}"} | _interval(interval)
                records.append(record | {"pool": pool, "covered_pool": covers(interval, pool)})
    return records


def _interval(interval: Interval) -> dict:
    return {"estimate": interval.estimate, "low": interval.low, "high": interval.high, "n": interval.n}


def _against(interval: Interval, found: dict, figure: str) -> dict:
    record = _interval(interval)
    for against in AGAINST:
        k, n = found[against][figure]
        truth = k / n if n else None
        record |= {against: truth, f"{against}_n": n, f"covered_{against}": covers(interval, truth)}
        expected = None
        if truth is not None and interval.estimate is not None:
            expected = expected_coverage((round(interval.estimate * interval.n), interval.n), (k, n))
        record[f"expected_{against}"] = expected
    return record


@dataclass(frozen=True)
class Coverage:
    """How many intervals held the truth, of how many, with a Wilson interval for the share
    (as if the intervals were independent: they are not quite, see `coverage_table`), and the
    share a valid interval would be expected to reach against that truth (None: exact truth, 95 %)."""

    label: str
    covered: int
    intervals: int
    share: Interval
    expected: float | None


def coverage(records: Sequence[dict], figure: str, against: str, label: str) -> Coverage:
    """The coverage of `figure`'s intervals against `against` (test, rest or pool) over `records`."""
    judged = [r for r in records if r["figure"] == figure and r.get(f"covered_{against}") is not None]
    covered = sum(bool(r[f"covered_{against}"]) for r in judged)
    expected = [r[f"expected_{against}"] for r in judged if r.get(f"expected_{against}") is not None]
    mean = float(np.mean(expected)) if expected else None
    return Coverage(label, covered, len(judged), proportion(covered, len(judged)), mean)
