"""What the benchmarks share: the repository, the shared data beside it, the study's form.

Benchmarks run as scripts (``python bench/bench_x.py``) from a checkout with ``../shared``
beside it (or ``SHARED_DATA`` pointing at its ``data/``); each puts the repository on the path
and imports this module as ``bench.common``.
"""

from __future__ import annotations

import os
from pathlib import Path

from backend.research.corpus import read_segments
from backend.resources import label_config

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SHARED_DATA", REPO.parent / "shared" / "data"))
CONFIG = label_config("interview_coding")
AUTH = ("bench", "bench-pass")  # basic auth of the backends the benchmarks start
OUT = REPO / "bench" / "out"


def pool_rows() -> list[dict]:
    """The 11,656 unlabeled interview segments (id, text, question)."""
    return read_segments(DATA / "segments.jsonl", require_codes=False)


def coded_rows() -> list[dict]:
    """The 98 segments coded by coder_b (id, text, codes)."""
    return read_segments(DATA / "labels_coder_b.jsonl", require_codes=True)
