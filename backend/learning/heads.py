"""The head on fixed features, and per-code thresholds chosen by cross-validation.

Two heads (CLASSIFIER_HEAD): one logistic regression per code (one-vs-rest, the default), or an
ensemble of classifier chains, whose links also see the earlier codes' probabilities, so
correlated codes (physical health, daily functioning and frequency co-occur) can inform each other.
SetFit fits the head after the body; the fast loop refits it alone on a body's cached embeddings,
the TF-IDF baseline fits a logistic one on its own features, and the quality estimate trains fresh
ones per fold.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import numpy as np
from scipy import sparse
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict
from sklearn.multiclass import OneVsRestClassifier
from sklearn.multioutput import ClassifierChain
from sklearn.pipeline import Pipeline, make_pipeline
from threadpoolctl import threadpool_limits

from backend.learning.options import HeadOptions

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)
MIN_EXAMPLES_PER_SIDE_FOR_TUNING = 4

P = ParamSpec("P")
R = TypeVar("R")


def one_blas_thread(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` with one BLAS thread.

    A head's matrices are small (labeled segments × features), so a second BLAS thread has
    little to share, and it spin-waits whenever the other core is busy (Label Studio, the server,
    a body round): a refit with its thresholds and quality estimate took 1.5–8× as long that way
    (docs/benchmarks.md). Encoding (torch's own threads) is not affected. The limit is
    process-wide, so heads are fitted by one thread at a time (a worker's jobs run in turn)."""

    @functools.wraps(function)
    def single_threaded(*args: P.args, **kwargs: P.kwargs) -> R:
        with threadpool_limits(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return single_threaded


def logistic_regression(options: HeadOptions) -> LogisticRegression:
    """One binary model per code: balanced class weights unless CLASS_WEIGHT=none."""
    return LogisticRegression(**options.params())


class ChainEnsemble(ClassifierMixin, BaseEstimator):
    """An ensemble of classifier chains (scikit-learn's ClassifierChain): each link a logistic
    regression on the features and the earlier codes' probabilities, P(code) the mean over chains.

    Orders are random (one per chain, seeded) or by frequency (most frequent code first, so rare
    codes condition on frequent ones; one chain, since every chain would be the same). A code that
    is constant in the training data (no positive yet) keeps that constant: a link cannot learn
    from one class, where one-vs-rest would give a constant predictor too.
    """

    def __init__(self, base=None, chains: int = 5, order: str = "random", random_state: int = 0):
        self.base, self.chains, self.order, self.random_state = base, chains, order, random_state

    def fit(self, features, label_matrix) -> ChainEnsemble:
        label_matrix = np.asarray(label_matrix)
        self.n_codes_ = label_matrix.shape[1]
        constant = (label_matrix == label_matrix[:1]).all(axis=0)
        self.constant_ = {j: float(label_matrix[0, j]) for j in np.flatnonzero(constant)}
        self.varying_ = np.flatnonzero(~constant)
        self.chains_ = []
        if len(self.varying_):
            targets = label_matrix[:, self.varying_]
            for order, seed in self._orders(targets):
                chain = ClassifierChain(
                    clone(self.base), order=order, chain_method="predict_proba", random_state=seed
                )
                self.chains_.append(chain.fit(features, targets))
        return self

    def _orders(self, targets: np.ndarray) -> list[tuple[object, int]]:
        if self.order == "frequency":
            return [(list(np.argsort(-targets.sum(axis=0), kind="stable")), self.random_state)]
        return [("random", self.random_state + i) for i in range(self.chains)]

    def predict_proba(self, features) -> np.ndarray:
        proba = np.zeros((features.shape[0], self.n_codes_))
        for j, value in self.constant_.items():
            proba[:, j] = value
        if self.chains_:
            proba[:, self.varying_] = np.mean(
                [chain.predict_proba(features) for chain in self.chains_], axis=0
            )
        return proba


@one_blas_thread
def fit_head(features, label_matrix: np.ndarray, options: HeadOptions):
    """The head on fixed features (embeddings or TF-IDF): per-code logistic regressions, or chains."""
    return on_used_columns(new_head(options), features).fit(features, label_matrix)


class UsedColumns(TransformerMixin, BaseEstimator):
    """Sparse features cut to the columns the training rows use.

    A TF-IDF lexicon fitted on a project's pool has tens of thousands of terms, of which a few
    hundred labeled segments use a few thousand. A column that is zero in every training row keeps
    a weight of exactly zero under the L2 penalty, so leaving it out changes no probability, and
    the logistic regressions fit in a fraction of the time (docs/benchmarks.md)."""

    def fit(self, features, y=None) -> UsedColumns:
        self.columns_ = np.unique(sparse.csr_matrix(features).indices)
        return self

    def transform(self, features):
        return sparse.csr_matrix(features)[:, self.columns_]


def on_used_columns(estimator, features) -> BaseEstimator | Pipeline:
    """`estimator` behind UsedColumns for sparse features; as it is for dense ones (embeddings)."""
    return make_pipeline(UsedColumns(), estimator) if sparse.issparse(features) else estimator


def new_head(options: HeadOptions):
    """An unfitted head of the options' kind."""
    if options.kind == "chain":
        return ChainEnsemble(logistic_regression(options), options.chains, options.chain_order, options.seed)
    return OneVsRestHead(logistic_regression(options))


class OneVsRestHead(OneVsRestClassifier):
    """scikit-learn's one-vs-rest, with one probability column per code even for a single code.

    Bug worked around: given a label matrix of one column, OneVsRestClassifier takes it for a
    binary problem and its predict_proba returns two columns (no, yes), so a project with one code
    (a lone yes/no question) got (n, 2) probabilities for one code."""

    def predict_proba(self, X) -> np.ndarray:
        proba = super().predict_proba(X)
        if self.label_binarizer_.y_type_ == "binary" and proba.ndim == 2 and proba.shape[1] == 2:
            return proba[:, 1:]
        return proba


@dataclass(frozen=True)
class SplitHead:
    """A one-vs-rest logistic head fitted on TF-IDF rows beside embeddings (learning/features.py
    `beside`), as the weights of each side, so that a pool's probabilities need no side-by-side
    matrix: at 100,000 segments that matrix holds 38 million entries, built and cut to the head's
    columns in every fast round (0.7 s of it, docs/benchmarks.md). The head's own `predict_proba`
    on that matrix gives the same probabilities, within 1e-6 (tests/learning/test_features.py)."""

    lexical: np.ndarray  # (TF-IDF columns, codes)
    dense: np.ndarray  # (embedding dimensions, codes), single precision
    intercept: np.ndarray  # (codes,)
    constant: np.ndarray  # (codes,): the probability of a code seen with one class only, else NaN

    def proba(self, lexical: sparse.spmatrix, embeddings: np.ndarray) -> np.ndarray:
        """Per-code probabilities of rows given as their TF-IDF rows and their (raw) embeddings.

        The embeddings' side is multiplied in single precision and divided by each row's length
        afterwards (unit rows, as `beside` makes them): a pool's embeddings are never copied to
        double precision (100,000 x 384: 0.18 of 0.33 s), and the probabilities stay within 1e-6."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        lengths = np.sqrt(np.einsum("ij,ij->i", embeddings, embeddings))
        lengths[lengths == 0] = 1.0
        dense = (embeddings @ self.dense) / lengths[:, None]
        proba = expit(lexical @ self.lexical + dense + self.intercept)
        fixed = ~np.isnan(self.constant)
        proba[:, fixed] = self.constant[fixed]
        return np.asarray(proba, dtype=np.float64)


def split_head(head, width: int, size: int) -> SplitHead | None:
    """`head` as a SplitHead on `width` TF-IDF columns beside `size` embedding dimensions; None for
    any other head (classifier chains), which then scores the side-by-side matrix itself."""
    if not isinstance(head, Pipeline) or len(head.steps) != 2:
        return None
    used, ovr = head.steps[0][1], head.steps[1][1]
    if not isinstance(used, UsedColumns) or not isinstance(ovr, OneVsRestHead):
        return None
    columns = used.columns_
    if len(columns) and columns.max() >= width + size:
        return None
    codes = len(ovr.estimators_)
    weights, intercept = np.zeros((width + size, codes)), np.zeros(codes)
    constant = np.full(codes, np.nan)
    for code, estimator in enumerate(ovr.estimators_):
        if isinstance(estimator, LogisticRegression) and estimator.coef_.shape[0] == 1:
            weights[columns, code], intercept[code] = estimator.coef_[0], estimator.intercept_[0]
        elif hasattr(estimator, "y_"):  # scikit-learn's _ConstantPredictor: one class in training
            constant[code] = float(np.ravel(estimator.y_)[0])
        else:
            return None
    return SplitHead(weights[:width], weights[width:].astype(np.float32), intercept, constant)


def head_thresholds(
    features, label_matrix: np.ndarray, options: HeadOptions, groups: np.ndarray | None = None
) -> np.ndarray:
    """Tuned thresholds when TUNE_THRESHOLDS is on, else the default for every code."""
    if options.tune:
        return tune_thresholds(features, label_matrix, options, groups)
    return options.default_thresholds(label_matrix.shape[1])


def duplicate_groups(rows: Sequence[str] | np.ndarray) -> np.ndarray:
    """A group number per row, shared by identical rows (texts, or embeddings as a 2-d array): one
    segment coded by several coders (MULTI_CODER_RULE=per_coder) is one group, kept in one fold."""
    if isinstance(rows, np.ndarray) and rows.ndim == 2:
        return np.unique(rows, axis=0, return_inverse=True)[1].ravel()
    return np.unique(np.asarray(list(rows), dtype=str), return_inverse=True)[1]


def out_of_fold_proba(
    features, target: np.ndarray, options: HeadOptions, groups: np.ndarray | None = None
) -> np.ndarray | None:
    """P(code) for each labeled segment from a fresh logistic head that did not see it.

    Stratified k-fold (k ≤ 5, at most the size of the smaller side); None when either side has
    fewer than two segments, so no fold could hold both. Rows that share a group (one task's
    answers under MULTI_CODER_RULE=per_coder) stay in one fold, so no head sees the segment it
    predicts through another coder's row.
    """
    smaller_side = int(min(target.sum(), len(target) - target.sum()))
    if smaller_side < 2:
        return None
    splits = min(5, smaller_side)
    head = on_used_columns(logistic_regression(options), features)
    if groups is None or len(np.unique(groups)) == len(groups):
        folds = StratifiedKFold(n_splits=splits, shuffle=True, random_state=options.seed)
        return cross_val_predict(head, features, target, cv=folds, method="predict_proba")[:, 1]
    splits = min(splits, _groups_on_smaller_side(target, groups))
    if splits < 2:
        return None
    folds = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=options.seed)
    try:
        proba = cross_val_predict(head, features, target, groups=groups, cv=folds, method="predict_proba")
    except ValueError:  # a training fold left with one side only: the groups are too uneven to split
        return None
    return proba[:, 1]


@one_blas_thread
def out_of_fold_probas(
    features, label_matrix: np.ndarray, options: HeadOptions, groups: np.ndarray | None = None
) -> list[np.ndarray | None]:
    """Each code's out-of-fold P(code), None where no estimate is possible (see out_of_fold_proba):
    fresh per-code logistic heads, or for the chain head, whole chains that did not see the row."""
    codes = range(label_matrix.shape[1])
    if options.kind != "chain":
        return [out_of_fold_proba(features, label_matrix[:, j], options, groups) for j in codes]
    estimable = [
        min(label_matrix[:, j].sum(), len(label_matrix) - label_matrix[:, j].sum()) >= 2 for j in codes
    ]
    whole = _chain_out_of_fold(features, label_matrix, options, groups) if any(estimable) else None
    return [whole[:, j] if whole is not None and estimable[j] else None for j in codes]


def _chain_out_of_fold(features, label_matrix: np.ndarray, options: HeadOptions, groups) -> np.ndarray | None:
    """P(code) of every row from chains fitted on the other folds: k <= 5, stratified by each row's
    rarest code so a rare code's few positives spread over the folds, a group in one fold. None
    when fewer than two folds are possible."""
    if groups is None:
        groups = np.arange(len(label_matrix))
    strata = _rarest_codes(label_matrix)
    splits = min(5, len(np.unique(groups)), int(np.bincount(strata + 1).max()))
    if splits < 2:
        return None
    if len(np.unique(groups)) == len(groups):
        folds = StratifiedKFold(n_splits=splits, shuffle=True, random_state=options.seed).split(
            features, strata
        )
    else:
        folds = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=options.seed).split(
            features, strata, groups
        )
    proba = np.zeros(label_matrix.shape)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        for train, test in folds:
            proba[test] = fit_head(features[train], label_matrix[train], options).predict_proba(
                features[test]
            )
    return proba


def _rarest_codes(label_matrix: np.ndarray) -> np.ndarray:
    """Each row's rarest code (its column), -1 for a row without codes."""
    counts = label_matrix.sum(axis=0)
    rarity = np.where(label_matrix == 1, counts[np.newaxis, :], np.inf)
    return np.where(label_matrix.any(axis=1), rarity.argmin(axis=1), -1)


def _groups_on_smaller_side(target: np.ndarray, groups: np.ndarray) -> int:
    """How many groups hold a positive, or a negative, whichever is fewer."""
    return min(len(np.unique(groups[target == 1])), len(np.unique(groups[target == 0])))


def tune_thresholds(
    features, label_matrix: np.ndarray, options: HeadOptions, groups: np.ndarray | None = None
) -> np.ndarray:
    """Per-code decision thresholds that maximise out-of-fold F1 of the head.

    For each code, the threshold on the grid 0.05…0.95 with the best out-of-fold F1 wins (ties go
    to the one nearest the default), then shrinks toward the default (:func:`shrunk`): with few
    positives the best threshold fits the labeled segments' chance and one coder's base rate more
    than the code (issue 38). Codes with fewer than four positives or negatives keep the
    default threshold: too few examples to choose anything better than chance. The body has
    seen these segments in training, so the estimate is optimistic; it still moves rare codes'
    thresholds in the right direction (see docs/benchmarks.md). `groups` (duplicate_groups) keeps
    one segment's rows in one fold.
    """
    return thresholds_of(out_of_fold_probas(features, label_matrix, options, groups), label_matrix, options)


def thresholds_of(
    probas: list[np.ndarray | None], label_matrix: np.ndarray, options: HeadOptions
) -> np.ndarray:
    """The thresholds :func:`tune_thresholds` chooses, from out-of-fold probabilities already computed."""
    default = options.default_threshold
    thresholds = options.default_thresholds(label_matrix.shape[1])
    for code, proba in enumerate(probas):
        target = label_matrix[:, code]
        smaller_side = int(min(target.sum(), len(target) - target.sum()))
        if proba is None or smaller_side < MIN_EXAMPLES_PER_SIDE_FOR_TUNING:
            continue
        scores = f1_per_threshold(target, proba, THRESHOLD_GRID)
        best = max(scores)
        candidates = THRESHOLD_GRID[np.isclose(scores, best)]
        tuned = float(candidates[np.argmin(np.abs(candidates - default))])
        thresholds[code] = shrunk(tuned, default, smaller_side, options.threshold_shrinkage)
    return thresholds


def shrunk(tuned: float, default: float, segments: int, prior: float) -> float:
    """A tuned threshold pulled toward the default: the tuned one weighs as the code's `segments`
    (its positives, or negatives if fewer) against `prior` segments at the default
    (THRESHOLD_SHRINKAGE). Measured on held-out segments against using a tuned threshold only above
    a count of positives (bench/bench_thresholds.py, docs/benchmarks.md): shrinking kept tuning's
    gain where few positives exist, where a count left the codes at the default."""
    return default + (tuned - default) * segments / (segments + prior)


def threshold_rule(options: HeadOptions) -> str:
    """How the thresholds were chosen, in words for the status page."""
    if not options.tune:
        return f"{options.default_threshold} for every code (TUNE_THRESHOLDS=false)"
    return (
        "the out-of-fold F1's best per code, pulled toward "
        f"{options.default_threshold} as if {options.threshold_shrinkage:g} segments stood there against the "
        f"code's positives (or negatives, if fewer); {options.default_threshold} with fewer than "
        f"{MIN_EXAMPLES_PER_SIDE_FOR_TUNING} of either"
    )


def f1_per_threshold(target: np.ndarray, proba: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """F1 of deciding `proba >= t` against `target`, for every `t` at once: one column per threshold
    in one scikit-learn call (a call per threshold spent most of a TF-IDF round in its validation)."""
    decisions = (proba[:, None] >= thresholds[None, :]).astype(int)
    targets = np.repeat(np.asarray(target, dtype=int)[:, None], len(thresholds), axis=1)
    return f1_score(targets, decisions, average=None, zero_division=0)
