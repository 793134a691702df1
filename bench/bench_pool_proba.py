"""Benchmark (not a test): a fast round's head probabilities on a pool of 100,000, two ways.

    python bench/bench_pool_proba.py [--size 100000] [--labeled 300]

FEATURES=tfidf+embeddings: a head fitted on TF-IDF rows beside the embeddings (learning/features.py)
scores the pool in chunks of 4,096 (as `HeadFitter.fit` hands them out). Before: each chunk's
side-by-side matrix built and scored by the scikit-learn pipeline (its columns cut to those the
training rows use). Now: `heads.SplitHead`, each side's weights applied apart. The pool's texts are
bench/corpus_100k.py's, its embeddings random (their values do not change the time), the lexicon
fitted on the pool and its rows remembered, as in a round. Prints the seconds of each way, best of 3.
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
from backend.storage.embeddings import LOOKUP_CHUNK
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
    lexicon.transform(texts)  # the pool's rows remembered, as after a round
    chunks = [
        (texts[start : start + LOOKUP_CHUNK], embeddings[start : start + LOOKUP_CHUNK])
        for start in range(0, len(texts), LOOKUP_CHUNK)
    ]
    before = best_of(3, lambda: [head.predict_proba(head_features(t, e, lexicon)) for t, e in chunks])
    now = best_of(3, lambda: [split.proba(lexicon.transform(t), e) for t, e in chunks])
    rows = best_of(3, lambda: [lexicon.transform(t) for t, _ in chunks])
    print(f"\n| {len(texts):,} segments, {len(lexicon.vectorizer.vocabulary_):,} terms | s |\n|---|---|")
    print(f"| side-by-side matrix, scikit-learn's pipeline (before) | {before:.3f} |")
    print(f"| SplitHead, each side apart (now) | {now:.3f} |")
    print(f"| of which the TF-IDF rows looked up | {rows:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
