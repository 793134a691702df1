"""The kept listing's segments as the fast loop's head reads them, kept from round to round.

A round's head scores every unlabeled segment. What it reads of them (the texts, their rows in the
body's embedding cache, their TF-IDF rows) changes only with the listing, the body or the lexicon,
not with an annotation; gathered every round they were O(N) work in Python per annotation (100,000
segments: about 0.3 s of a round, docs/benchmarks.md). So they are gathered once per listing and
body, and a round takes the probabilities of the whole listing in chunks and keeps those of its
unlabeled tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from backend.learning.features import Lexicon
from backend.storage.embeddings import LOOKUP_CHUNK
from backend.storage.lexicon import LexiconStore
from backend.worker.bodies import Body
from backend.worker.pool import Segments

Progress = Callable[[int, int], None] | None


@dataclass(frozen=True, eq=False)
class PoolFeatures:
    """A listing's segments for one body and lexicon: the positions with a text, those positions'
    rows in the body's embedding cache (rows never move) and their TF-IDF rows (None without a
    lexicon)."""

    segments: Segments
    body: Body
    lexicon: Lexicon | None
    filled: np.ndarray
    rows: np.ndarray
    lexical: sparse.csr_matrix | None

    def proba(self, proba_of_rows: Callable, codes: int) -> np.ndarray:
        """`proba_of_rows(lexical, embeddings)` for every segment of the listing, chunk by chunk (the
        pool's embeddings are never copied whole); a blank segment's are 0."""
        proba = np.zeros((len(self.segments.ids), codes))
        for start in range(0, len(self.filled), LOOKUP_CHUNK):
            part = slice(start, start + LOOKUP_CHUNK)
            lexical = None if self.lexical is None else self.lexical[part]
            embeddings = self.body.cache.matrix_rows(self.rows[part])
            proba[self.filled[part]] = proba_of_rows(lexical, embeddings)
        return proba


class PoolFeaturesKeeper:
    """The last PoolFeatures made, made again when the listing or the body changed."""

    def __init__(self, lexicon: LexiconStore | None):
        self.lexicon = lexicon
        self._kept: PoolFeatures | None = None

    def of(
        self, segments: Segments, body: Body, labeled_texts: Sequence[str], on_progress: Progress = None
    ) -> PoolFeatures:
        """The features of `segments` under `body`, texts not cached encoded now (`on_progress`). A
        new listing is also when the lexicon is checked for growth (LexiconStore.current: fitted on
        the labeled segments and the listing's)."""
        kept = self._kept
        if kept is None or kept.segments is not segments or kept.body is not body:
            kept = self._kept = self._made(segments, body, labeled_texts, on_progress)
        return kept

    def _made(
        self, segments: Segments, body: Body, labeled_texts: Sequence[str], on_progress: Progress
    ) -> PoolFeatures:
        filled = np.flatnonzero(segments.filled())
        texts = list(segments.texts[filled])
        rows = body.rows(texts, on_progress)
        lexicon = None if self.lexicon is None else self.lexicon.current([*labeled_texts, *texts])
        lexical = None
        if lexicon is not None:
            lexical = lexicon.transform(texts)
            lexicon.forget()  # its rows of the pool are `lexical` now
        return PoolFeatures(segments, body, lexicon, filled, rows, lexical)
