"""What a head sees (FEATURES): a body's sentence embeddings, or TF-IDF beside them.

Words and meaning fail differently: TF-IDF catches the terms a codebook turns on, embeddings the
paraphrases. Across coders the two together held best (issue 38). The vectorizer is fitted on the
project's segments, labeled or not (no labels needed), and kept as a :class:`Lexicon` that also
remembers the rows it has computed (the fit's own, then the labeled segments' and the evidence's),
so no text is transformed twice; the fast loop keeps its pool's rows itself
(worker/pool_features.py).
The research baselines (tfidf_model.py) and the live loop build their features here.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import joblib
import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

REMEMBERED = 2  # rows kept, per segment fitted on: the fit's, and room for the evidence's


def tfidf_vectorizer(min_df: int = 1) -> TfidfVectorizer:
    """Word 1–2-grams with sublinear term frequency: a strong bag-of-words for short answers."""
    return TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=min_df)


def beside(lexical: sparse.spmatrix, embeddings: np.ndarray) -> sparse.csr_matrix:
    """TF-IDF rows and embeddings side by side, both of unit length (TF-IDF rows are normalized by
    the vectorizer, the embeddings here), so neither outweighs the other by scale alone."""
    return side_by_side(sparse.csr_matrix(lexical), normalize(embeddings))


def side_by_side(lexical: sparse.csr_matrix, dense: np.ndarray) -> sparse.csr_matrix:
    """`scipy.sparse.hstack([lexical, dense])`, laid out directly: each row's sparse entries, then its
    dense ones. A quarter of hstack's time, which goes through a coordinate copy of every entry
    (a pool of 11,656 segments: 0.02 s against 0.09–0.24 s, in every fast round)."""
    rows, width = lexical.shape
    size = dense.shape[1]
    indptr = lexical.indptr + np.arange(rows + 1) * size  # each row holds `size` more entries
    sparse_at = np.arange(lexical.nnz) + np.repeat(np.arange(rows), np.diff(lexical.indptr)) * size
    dense_at = np.ones(lexical.nnz + rows * size, dtype=bool)
    dense_at[sparse_at] = False
    indices = np.empty(len(dense_at), dtype=np.int32)
    data = np.empty(len(dense_at), dtype=np.result_type(lexical.dtype, dense.dtype))
    indices[sparse_at], data[sparse_at] = lexical.indices, lexical.data
    indices[dense_at] = np.tile(np.arange(width, width + size, dtype=np.int32), rows)
    data[dense_at] = dense.ravel()
    return sparse.csr_matrix((data, indices, indptr), shape=(rows, width + size))


def needs_refit(fitted_on: int, segments: int, growth: float) -> bool:
    """Whether a vectorizer fitted on `fitted_on` segments is due again: the project has grown by
    more than the share `growth` since (new words get no column until then)."""
    return segments > fitted_on * (1 + growth)


class Lexicon:
    """A TF-IDF vectorizer fitted on a project's segments, with the rows it has transformed so far.

    The rows it remembers are bounded (REMEMBERED times the segments it was fitted on: evidence
    spans score many shortened texts each round); past that it starts afresh.
    Its columns never change once fitted: tasks imported later get rows of the same width, and a
    head fitted on them stays valid until the lexicon is fitted again (and the head with it)."""

    def __init__(self, vectorizer: TfidfVectorizer, fitted_on: int):
        self.vectorizer, self.fitted_on = vectorizer, fitted_on
        self._saved: bytes | None = None
        self.forget()

    @classmethod
    def fit(cls, texts: Sequence[str]) -> Lexicon:
        """Fitted on the distinct non-blank `texts`: no labels, so a whole pool can be used.

        Terms of one segment only are left out: they cannot tell the head anything about another
        segment, and they are most of a pool's bigrams (11,656 segments: 36,481 terms instead of
        100,184, and a head fits in a third of the time). Too few segments to share any term: all."""
        distinct = sorted({text for text in texts if text.strip()})
        try:
            vectorizer = tfidf_vectorizer(min_df=2)
            rows = vectorizer.fit_transform(distinct)  # the rows come with the fit: no second pass
        except ValueError:  # no term in two segments
            vectorizer = tfidf_vectorizer()
            rows = vectorizer.fit_transform(distinct)
        lexicon = cls(vectorizer, len(distinct))
        lexicon._index, lexicon._matrix = {text: i for i, text in enumerate(distinct)}, rows.tocsr()
        return lexicon

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """TF-IDF rows of `texts`, each text transformed once (a pool of 11,656 costs seconds); one
        pass over the texts when all are known."""
        index = self._index
        rows = np.fromiter((index.get(text, -1) for text in texts), dtype=np.int64, count=len(texts))
        lacking = np.flatnonzero(rows < 0)
        if len(lacking):
            missing = list(dict.fromkeys(texts[i] for i in lacking))
            if len(index) + len(missing) > REMEMBERED * max(self.fitted_on, 1):  # evidence's short texts
                self.forget()
                index, missing = self._index, list(dict.fromkeys(texts))
            offset = len(index)
            index.update((text, offset + i) for i, text in enumerate(missing))
            self._matrix = sparse.vstack([self._matrix, self.vectorizer.transform(missing)], format="csr")
            rows = np.fromiter((index[text] for text in texts), dtype=np.int64, count=len(texts))
        return self._matrix[rows]

    def forget(self) -> None:
        """Drop the rows it remembers: a caller that keeps a pool's rows itself (worker/pool_features.py)
        does not hold them twice (100,000 segments: about 200 MB)."""
        self._index: dict[str, int] = {}
        self._matrix = sparse.csr_matrix((0, len(self.vectorizer.vocabulary_)))

    def remembered(self) -> tuple[list[str], sparse.csr_matrix]:
        """The texts it holds rows for, in the rows' order, and the rows."""
        return list(self._index), self._matrix

    def remember(self, texts: Sequence[str], rows: sparse.csr_matrix) -> None:
        """Take the rows this lexicon made for `texts` before (saved with it: storage/lexicon.py)."""
        if len(texts) != rows.shape[0] or rows.shape[1] != len(self.vectorizer.vocabulary_):
            raise ValueError("one row per text, one column per term of this lexicon")
        self._index, self._matrix = {text: i for i, text in enumerate(texts)}, sparse.csr_matrix(rows)

    def beside(self, texts: Sequence[str], embeddings: np.ndarray) -> sparse.csr_matrix:
        """The head's features for `texts`: their TF-IDF rows beside their embeddings."""
        return beside(self.transform(texts), embeddings)

    def saved(self) -> bytes:
        """The lexicon as saved (joblib, without the rows it remembers), made once: every version of
        a fit saves the same lexicon, and pickling its vocabulary took 0.1–0.2 s of each fast round."""
        if self._saved is None:
            buffer = io.BytesIO()
            joblib.dump(self, buffer)
            self._saved = buffer.getvalue()
        return self._saved

    def __getstate__(self) -> dict:  # saved without the rows it remembers
        return {"vectorizer": self.vectorizer, "fitted_on": self.fitted_on}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["vectorizer"], state["fitted_on"])


def head_features(texts: Sequence[str], embeddings: np.ndarray, lexicon: Lexicon | None):
    """What the head sees for `texts`: the embeddings as they are, or beside the lexicon's rows."""
    return embeddings if lexicon is None else lexicon.beside(texts, embeddings)
