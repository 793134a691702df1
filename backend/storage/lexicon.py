"""The project's current lexicon (FEATURES=tfidf+embeddings): ``MODEL_DIR/<project>/lexicon.joblib``.

The fast loop fits its TF-IDF vectorizer on every segment of the project (labeled or not) and keeps
it here, so a new worker takes it up instead of fitting again, and fits it again only when the
project has grown by TFIDF_REFIT_GROWTH since (imported tasks). Each version saves its own copy
with its head (learning/setfit_model.py), which is what `/predict` and imported tasks use.

The file keeps the rows of the segments the lexicon was fitted on beside it (one joblib dict:
`lexicon`, `texts`, `rows`), so a new worker's first round takes them instead of transforming the
whole pool again: at 100,000 segments, 2 s to read and take instead of 9–15 s of the first version
after the tenth annotation, and of every round that starts a fast lane anew (docs/benchmarks.md).
The file is then about 1.8 kB per segment (180 MB at 100,000). A file of a lexicon alone (written
before) is read as one without rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import joblib

from backend.learning.features import Lexicon, needs_refit
from backend.storage.atomic import write_with

log = logging.getLogger(__name__)


class LexiconStore:
    """One project's lexicon, kept in memory by the worker and on disk for the next one."""

    def __init__(self, path: Path, growth: float):
        self.path, self.growth = Path(path), growth
        self._lexicon: Lexicon | None = None

    def current(self, segments: Sequence[str]) -> Lexicon:
        """The lexicon for a project whose segments are now `segments`: the kept one, or one fitted
        on them when there is none yet or the project has outgrown it."""
        lexicon = self._lexicon or self._read()
        count = len({text for text in segments if text.strip()})
        if lexicon is None or needs_refit(lexicon.fitted_on, count, self.growth):
            lexicon = Lexicon.fit(segments)
            texts, rows = lexicon.remembered()
            saved = {"lexicon": lexicon, "texts": texts, "rows": rows}
            write_with(self.path, lambda handle: joblib.dump(saved, handle))
            log.info(
                "fitted the TF-IDF lexicon on %d segments: %d terms",
                count,
                len(lexicon.vectorizer.vocabulary_),
            )
        self._lexicon = lexicon
        return lexicon

    def _read(self) -> Lexicon | None:
        try:
            saved = joblib.load(self.path)
            if isinstance(saved, Lexicon):
                return saved
            saved["lexicon"].remember(saved["texts"], saved["rows"])
            return saved["lexicon"]
        except FileNotFoundError:
            return None
        except Exception as exc:  # a damaged file: fit again rather than fail the round
            log.warning("the lexicon %s is unreadable (%s); fitting it again", self.path, type(exc).__name__)
            return None
