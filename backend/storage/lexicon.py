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
before) is read as one without rows. Each version saves the lexicon alone (`Lexicon.saved`): the
rows are this file's, for the fast lane's first round.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import joblib

from backend.learning.features import Lexicon, needs_refit
from backend.storage.atomic import write_with
from backend.storage.locks import file_lock

log = logging.getLogger(__name__)
LOCK_NAME = ".lexicon-lock"


class LexiconStore:
    """One project's lexicon, kept in memory by the worker and on disk for the next one."""

    def __init__(self, path: Path, growth: float):
        self.path, self.growth = Path(path), growth
        self._lexicon: Lexicon | None = None

    def current(self, segments: Sequence[str]) -> Lexicon:
        """The lexicon for a project whose segments are now `segments`: the kept one, or one fitted
        on them when there is none yet or the project has outgrown it. Under a lock: the background
        lane's pre-encoding and a first round that shares its encoding may ask at once, and a fit at
        100,000 segments takes 15 s and writes 180 MB."""
        lexicon = self._lexicon
        count = len({text for text in segments if text.strip()})
        if lexicon is None or needs_refit(lexicon.fitted_on, count, self.growth):
            with file_lock(self.path.with_name(LOCK_NAME)):
                lexicon = self._read()  # another process may have fitted it meanwhile
                if lexicon is None or needs_refit(lexicon.fitted_on, count, self.growth):
                    lexicon = self._fitted(segments, count)
        self._lexicon = lexicon
        return lexicon

    def _fitted(self, segments: Sequence[str], count: int) -> Lexicon:
        """A lexicon fitted on `segments`, saved with the rows of the segments it was fitted on."""
        lexicon = Lexicon.fit(segments)
        texts, rows = lexicon.remembered()
        saved = {"lexicon": lexicon, "texts": texts, "rows": rows}
        write_with(self.path, lambda handle: joblib.dump(saved, handle))
        terms = len(lexicon.vectorizer.vocabulary_)
        log.info("fitted the TF-IDF lexicon on %d segments: %d terms", count, terms)
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
