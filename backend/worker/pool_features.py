"""The kept listing's segments as the fast loop's head reads them, kept from round to round.

A round's head scores every unlabeled segment. What it reads of them (the texts, their rows in the
body's embedding cache, their TF-IDF rows) changes with the listing, the body or the lexicon, not
with an annotation; gathered every round they were O(N) work in Python per annotation (100,000
segments: about 0.3 s of a round, docs/benchmarks.md). So they are gathered when one of those
changes, and a round takes the probabilities of the whole listing in chunks and keeps those of its
unlabeled tasks. A new listing under the same lexicon carries the TF-IDF rows of the segments it
shares with the last one over: only new segments are transformed (100,000 of them take minutes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from backend.learning.features import Lexicon
from backend.storage.lexicon import LexiconStore
from backend.worker.bodies import Body
from backend.worker.pool import Segments

CHUNK = 4096  # segments scored at a time: their embeddings are a few megabytes
Progress = Callable[[int, int], None] | None


@dataclass(frozen=True, eq=False)
class PoolFeatures:
    """A listing's segments for one body and lexicon: the positions with a text, those positions'
    rows in the body's embedding cache (rows never move) and their TF-IDF rows in blocks of CHUNK
    (None without a lexicon). The lexicon holds no rows of its own for them (Lexicon.forget): one
    copy, not two. Blocks, not one matrix: a round takes the rows a block at a time, and scipy's
    slicing copies each block it cuts (100,000 segments: 0.7 s of every round under coders' load,
    docs/benchmarks.md), so they are cut once, when the features are made."""

    segments: Segments
    body: Body
    lexicon: Lexicon | None
    filled: np.ndarray
    rows: np.ndarray
    lexical_blocks: tuple[sparse.csr_matrix, ...] | None

    def proba(self, proba_of_rows: Callable, codes: int) -> np.ndarray:
        """`proba_of_rows(lexical, embeddings)` for every segment of the listing, chunk by chunk (the
        pool's embeddings are never copied whole); a blank segment's are 0."""
        proba = np.zeros((len(self.segments.ids), codes))
        for n, start in enumerate(range(0, len(self.filled), CHUNK)):
            part = slice(start, start + CHUNK)
            lexical = None if self.lexical_blocks is None else self.lexical_blocks[n]
            proba[self.filled[part]] = proba_of_rows(lexical, self.body.embeddings_at(self.rows[part]))
        return proba

    def lexical_matrix(self) -> sparse.csr_matrix | None:
        """The TF-IDF rows as one matrix (a copy of every block)."""
        return None if self.lexical_blocks is None else sparse.vstack(self.lexical_blocks, format="csr")

    def texts(self) -> np.ndarray:
        return self.segments.texts[self.filled]


class PoolFeaturesKeeper:
    """The last PoolFeatures made, made again when the listing or the body changed."""

    def __init__(self, lexicon: LexiconStore | None):
        self.lexicon = lexicon
        self._kept: PoolFeatures | None = None

    def of(
        self, segments: Segments, body: Body, labeled_texts: Sequence[str], on_progress: Progress = None
    ) -> PoolFeatures:
        """The features of `segments` under `body`, texts not cached encoded now (`on_progress`).
        Whenever they are made again (a new listing or body) the lexicon is checked for growth
        (LexiconStore.current: fitted on the labeled segments and the listing's)."""
        kept = self._kept
        if kept is None or kept.segments is not segments or kept.body is not body:
            self._kept = None  # the last one's rows go as soon as they are carried over
            kept = self._kept = self._made(segments, body, labeled_texts, on_progress, kept)
        return kept

    def _made(
        self,
        segments: Segments,
        body: Body,
        labeled_texts: Sequence[str],
        on_progress: Progress,
        last: PoolFeatures | None,
    ) -> PoolFeatures:
        filled = np.flatnonzero(segments.filled())
        texts = segments.texts[filled]
        rows = body.rows(texts, on_progress)
        if self.lexicon is None:
            return PoolFeatures(segments, body, None, filled, rows, None)
        lexicon = self.lexicon.current([*labeled_texts, *texts])
        carried = last if last is not None and last.lexicon is lexicon else None
        blocks = row_blocks(lexical_rows(lexicon, texts, carried), CHUNK)
        return PoolFeatures(segments, body, lexicon, filled, rows, blocks)


def row_blocks(matrix: sparse.csr_matrix, size: int) -> tuple[sparse.csr_matrix, ...]:
    """`matrix` cut into blocks of `size` rows (copies: the caller lets `matrix` go)."""
    return tuple(matrix[start : start + size] for start in range(0, matrix.shape[0], size))


def lexical_rows(lexicon: Lexicon, texts: np.ndarray, last: PoolFeatures | None) -> sparse.csr_matrix:
    """The TF-IDF rows of `texts`: those `last` (of the same lexicon) has, carried over, the others
    transformed; the lexicon then forgets the rows it made."""
    if last is None or not last.lexical_blocks:  # none, or an empty listing's
        lexical = lexicon.transform(texts)
    else:
        known = {text: row for row, text in enumerate(last.texts())}
        at = np.fromiter((known.get(text, -1) for text in texts), dtype=np.int64, count=len(texts))
        new = np.flatnonzero(at < 0)
        at[new] = len(last.filled) + np.arange(len(new))
        added = [lexicon.transform(texts[new])] if len(new) else []
        lexical = sparse.vstack([*last.lexical_blocks, *added], format="csr")[at]
    lexicon.forget()
    return lexical
