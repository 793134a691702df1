"""Benchmark (not a test): a fast round's head probabilities on a pool of 100,000, two ways.

    python bench/bench_pool_proba.py [--size 100000] [--labeled 300]

FEATURES=tfidf+embeddings: a head fitted on TF-IDF rows beside the embeddings (learning/features.py)
scores the pool in chunks of 4,096 (worker/pool_features.py). First: each chunk's side-by-side
matrix built and scored by the scikit-learn pipeline (its columns cut to those the training rows
use). Then: `heads.SplitHead`, each side's weights applied apart, with each chunk's TF-IDF rows
looked up in the lexicon by text, as every round did until ab78489. Now: SplitHead on the pool's
TF-IDF rows as PoolFeatures keeps them between rounds. The pool's texts are bench/corpus_100k.py's,
its embeddings random (their values do not change the time), the lexicon fitted on the pool and its
rows remembered. Prints the seconds of each way, best of 3.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from backend.learning.features import Lexicon, head_features
from backend.learning.heads import HeadOptions, fit_head, split_head
from backend.worker.pool_features import CHUNK
from bench.common import pool_rows
from bench.corpus_100k import grown


def best_of(runs: int, work) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--labeled", type=int, default=300)
    args = parser.parse_args()
    texts = [row["text"] for row in grown(pool_rows(), args.size)]
    lexicon = Lexicon.fit(texts)
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(len(texts), 384)).astype(np.float32)
    labels = (rng.random((args.labeled, 5)) < 0.3).astype(int)
    at = slice(0, args.labeled)
    head = fit_head(head_features(texts[at], embeddings[at], lexicon), labels, HeadOptions())
    split = split_head(head, len(lexicon.vectorizer.vocabulary_), embeddings.shape[1])
    kept = lexicon.transform(texts)  # the pool's rows remembered, as after a round
    chunks = [
        (texts[start : start + CHUNK], embeddings[start : start + CHUNK], kept[start : start + CHUNK])
        for start in range(0, len(texts), CHUNK)
    ]
    before = best_of(3, lambda: [head.predict_proba(head_features(t, e, lexicon)) for t, e, _ in chunks])
    looked_up = best_of(3, lambda: [split.proba(lexicon.transform(t), e) for t, e, _ in chunks])
    now = best_of(3, lambda: [split.proba(rows, e) for _, e, rows in chunks])
    print(f"\n| {len(texts):,} segments, {len(lexicon.vectorizer.vocabulary_):,} terms | s |\n|---|---|")
    print(f"| side-by-side matrix, scikit-learn's pipeline | {before:.3f} |")
    print(f"| SplitHead, TF-IDF rows looked up by text every round | {looked_up:.3f} |")
    print(f"| SplitHead on the rows kept with the listing (now) | {now:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
