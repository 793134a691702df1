"""Thresholds and C that do not overfit: which rule holds on segments the head did not see (not a test).

    python bench/bench_thresholds.py [--draws 40] [--sizes 20,45,70] [--out bench/out]

Issue 38 item 3. On the 98 coded segments, for each training size, `--draws` random training sets
(the rest is the test set), with the bundled model's base embeddings (FEATURES=embeddings) and with
TF-IDF fitted on the 11,656 pool segments beside them (FEATURES=tfidf+embeddings). The same fitted
head is scored with each threshold rule:

- 0.5: no tuning;
- tuned: the out-of-fold best threshold wherever a code has 4 positives and 4 negatives (the rule
  before issue 38);
- gate m: tuned only where the smaller side has at least m segments, else 0.5;
- shrink k: 0.5 + (tuned - 0.5) * n / (n + k), n the smaller side's count: the tuned value weighs
  as n segments against k at 0.5.

and the head's C fixed at 1, or chosen from a grid by the same out-of-fold evidence (macro-F1 at the
tuned thresholds). Macro-F1 on the test rest, mean ± sd over the draws, and each rule's paired
difference from 0.5. One coder's labels in training and test: a cross-coder shift (issue 38) can
only make tuning look worse than here. Results: OUT/thresholds.json and tables.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from sklearn.metrics import f1_score

from backend.learning import heads
from backend.learning.features import Lexicon
from backend.research.report import markdown_table
from bench.common import STUDY_CODES, coded_with_base_body, draws_arguments, pool_rows

CODES = STUDY_CODES
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)
GATES = (8, 12, 16)
SHRINKS = (5, 10, 20)


def rules(tuned: np.ndarray, smaller_side: np.ndarray) -> dict[str, np.ndarray]:
    """Each threshold rule's thresholds from the tuned ones and each code's smaller side."""
    found = {"0.5": np.full(len(tuned), 0.5), "tuned": tuned}
    for m in GATES:
        found[f"gate {m}"] = np.where(smaller_side >= m, tuned, 0.5)
    for k in SHRINKS:
        found[f"shrink {k}"] = 0.5 + (tuned - 0.5) * smaller_side / (smaller_side + k)
    return found


def macro_f1(truth: np.ndarray, proba: np.ndarray, thresholds: np.ndarray) -> float:
    return float(f1_score(truth, proba >= thresholds, average="macro", zero_division=0))


def chosen_c(features, matrix, options, groups) -> float:
    """The C of the grid whose out-of-fold macro-F1 at its tuned thresholds is best (ties: nearest 1)."""
    scores = []
    for c in C_GRID:
        probas = heads.out_of_fold_probas(features, matrix, replace(options, c=c), groups)
        estimable = [j for j, proba in enumerate(probas) if proba is not None]
        if not estimable:
            return 1.0
        thresholds = heads.thresholds_of(probas, matrix, options)
        f1 = [f1_score(matrix[:, j], probas[j] >= thresholds[j], zero_division=0) for j in estimable]
        scores.append(np.mean(f1))
    best = np.isclose(scores, max(scores))
    return float(min(np.array(C_GRID)[best], key=lambda c: abs(np.log(c))))


def one_draw(features, matrix, train, test, options) -> dict[str, float]:
    """Test macro-F1 of every rule, with C=1 and with C chosen by the evidence."""
    groups = np.arange(len(train))
    found = {}
    side = np.minimum(matrix[train].sum(axis=0), len(train) - matrix[train].sum(axis=0))
    for label, c in (("C=1", 1.0), ("C chosen", chosen_c(features[train], matrix[train], options, groups))):
        head_options = replace(options, c=c)
        head = heads.fit_head(features[train], matrix[train], head_options)
        tuned = heads.tune_thresholds(features[train], matrix[train], head_options, groups)
        proba = head.predict_proba(features[test])
        for rule, thresholds in rules(tuned, side).items():
            found[f"{label}, {rule}"] = macro_f1(matrix[test], proba, thresholds)
        found[f"{label}: C"] = c
    return found


def main() -> None:
    args = draws_arguments(__doc__.splitlines()[0], draws=40, sizes="20,45,70")
    rows, texts, matrix, body = coded_with_base_body()
    embeddings = body.embed(texts)
    lexicon = Lexicon.fit([row["text"] for row in pool_rows()] + texts)
    feature_sets = {"embeddings": embeddings, "tfidf+embeddings": lexicon.beside(texts, embeddings)}
    options = heads.HeadOptions(threshold_shrinkage=0)  # the rules start from the unshrunk tuned ones
    results: dict = {}
    rng = np.random.default_rng(0)
    sizes = [int(size) for size in args.sizes.split(",")]
    draws = {size: [rng.permutation(len(rows)) for _ in range(args.draws)] for size in sizes}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, features in feature_sets.items():
        for size, orders in draws.items():
            started = time.perf_counter()
            runs = [one_draw(features, matrix, order[:size], order[size:], options) for order in orders]
            setting = f"{name} @{size}"
            results[setting] = {key: [run[key] for run in runs] for key in runs[0]}
            print(f"\n{setting}: {time.perf_counter() - started:.0f} s", flush=True)
            print(table(results[setting]), flush=True)
            (args.out / "thresholds.json").write_text(json.dumps(results, indent=2))


def table(figures: dict) -> str:
    """Each rule's test macro-F1 and its paired difference from C=1 at 0.5."""
    baseline = np.array(figures["C=1, 0.5"])
    body = []
    for key, values in figures.items():
        if key.endswith(": C"):
            continue
        diff = np.array(values) - baseline
        spread = f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"
        body.append(
            [key, spread, f"{diff.mean():+.3f}", f"{(diff > 0).mean():.2f}", f"{(diff < 0).mean():.2f}"]
        )
    header = ["rule", "macro-F1 (test rest)", "minus C=1, 0.5", "draws above", "draws below"]
    chosen = f"C chosen: median {np.median(figures['C chosen: C']):g} over {len(baseline)} draws\n"
    return chosen + markdown_table(header, body)


if __name__ == "__main__":
    main()
