"""What the fast loop's head reads of its pool, kept from round to round (worker/pool_features.py)."""

import numpy as np
from scipy import sparse

from backend.domain.scheme import parse_label_config
from backend.storage.embeddings import EmbeddingCache
from backend.storage.lexicon import LexiconStore
from backend.worker import pool_features
from backend.worker.bodies import Body
from backend.worker.pool import Segments
from backend.worker.pool_features import PoolFeaturesKeeper

SCHEME = parse_label_config(
    '<View><Text name="text" value="$text"/><Choices name="c" toName="text" choice="multiple">'
    '<Choice value="a"/></Choices></View>'
)
TEXTS = ["the pain in my back", "my back hurts", "  ", "sleep is short", "the pain of sleep"]


class Encoder:
    """A body's model: each text's embedding is its length and its count of 'e', each text recorded."""

    def __init__(self):
        self.seen: list[str] = []

    def embed(self, texts, precision: str) -> np.ndarray:
        self.seen += list(texts)
        return np.array([[len(text), text.count("e")] for text in texts], dtype=np.float32)


def body_in(directory, encoder: Encoder, name: str = "base") -> Body:
    return Body(name, "model", 128, EmbeddingCache(directory), "fp32", lambda: encoder)


def segments_of(texts: list[str], first_id: int = 0) -> Segments:
    return Segments.of({first_id + i: {"text": text} for i, text in enumerate(texts)}, SCHEME)


def lengths_and_lexical_sums(lexical, embeddings: np.ndarray) -> np.ndarray:
    """Stands in for a head: each row's embedding's first value and its TF-IDF row's sum."""
    sums = np.zeros(len(embeddings)) if lexical is None else np.asarray(lexical.sum(axis=1)).ravel()
    return np.column_stack([embeddings[:, 0], sums])


def test_a_listing_is_read_once_for_a_body_and_blank_segments_score_zero(tmp_path):
    encoder, store = Encoder(), LexiconStore(tmp_path / "lexicon.joblib", growth=0.5)
    keeper, body, segments = (
        PoolFeaturesKeeper(store),
        body_in(tmp_path / "base", encoder),
        segments_of(TEXTS),
    )
    pool = keeper.of(segments, body, ["my back"])
    assert keeper.of(segments, body, ["my back", "more labels"]) is pool, "a round reads nothing again"
    assert sorted(encoder.seen) == sorted(text for text in TEXTS if text.strip()), "each text encoded once"
    proba = pool.proba(lengths_and_lexical_sums, 2)
    expected = pool.lexicon.vectorizer.transform(TEXTS).sum(axis=1)
    np.testing.assert_allclose(proba[:, 0], [len(text) if text.strip() else 0 for text in TEXTS])
    np.testing.assert_allclose(proba[:, 1], np.where([bool(t.strip()) for t in TEXTS], expected.A1, 0))


def test_a_new_listing_carries_the_tfidf_rows_of_the_segments_it_shares_over(tmp_path):
    store = LexiconStore(tmp_path / "lexicon.joblib", growth=0.5)
    keeper, body = PoolFeaturesKeeper(store), body_in(tmp_path / "base", Encoder())
    first = keeper.of(segments_of(TEXTS), body, [])
    transformed: list[str] = []
    vectorizer = first.lexicon.vectorizer
    transform = vectorizer.transform
    vectorizer.transform = lambda texts: transformed.extend(texts) or transform(texts)
    grown = segments_of([*TEXTS[1:], "a short back"], first_id=1)
    second = keeper.of(grown, body, [])
    assert second is not first and second.lexicon is first.lexicon
    assert transformed == ["a short back"], "only the new segment is transformed"
    fresh = transform([text for text in grown.texts if text.strip()])
    assert abs(second.lexical_matrix() - fresh).max() < 1e-12
    assert sparse.issparse(second.lexical_matrix())
    assert len(first.lexicon._index) == 0, "the lexicon keeps no copy"


def test_a_new_body_reads_its_own_cache_and_a_grown_project_refits_the_lexicon(tmp_path):
    store = LexiconStore(tmp_path / "lexicon.joblib", growth=0.5)
    keeper, base = PoolFeaturesKeeper(store), body_in(tmp_path / "base", Encoder())
    first = keeper.of(segments_of(TEXTS), base, [])
    tuned_encoder = Encoder()
    tuned = keeper.of(segments_of(TEXTS), body_in(tmp_path / "tuned", tuned_encoder, "v3"), [])
    assert len(tuned_encoder.seen) == 4 and tuned.lexicon is first.lexicon
    more = [*TEXTS, *(f"segment number {i} of many" for i in range(10))]
    grown = keeper.of(segments_of(more), base, [])
    assert grown.lexicon is not first.lexicon, "a project grown by half again: the lexicon is fitted again"
    fresh = grown.lexicon.vectorizer.transform([text for text in more if text.strip()])
    assert abs(grown.lexical_matrix() - fresh).max() < 1e-12


def test_without_a_lexicon_the_head_sees_embeddings_alone_and_an_empty_pool_scores_nothing(tmp_path):
    keeper, body = PoolFeaturesKeeper(None), body_in(tmp_path / "base", Encoder())
    pool = keeper.of(segments_of(TEXTS), body, [])
    assert pool.lexicon is None and pool.lexical_matrix() is None
    np.testing.assert_allclose(pool.proba(lengths_and_lexical_sums, 2)[:, 1], 0)
    lexicon = LexiconStore(tmp_path / "l.joblib", growth=0.5)
    empty = PoolFeaturesKeeper(lexicon).of(segments_of([]), body, ["a labeled segment"])
    assert empty.proba(lengths_and_lexical_sums, 2).shape == (0, 2)


def test_rows_in_blocks_of_a_few_and_a_listing_after_an_empty_one(tmp_path, monkeypatch):
    monkeypatch.setattr(pool_features, "CHUNK", 2)
    store = LexiconStore(tmp_path / "lexicon.joblib", growth=0.5)
    keeper, body = PoolFeaturesKeeper(store), body_in(tmp_path / "base", Encoder())
    first = keeper.of(segments_of(TEXTS), body, [])
    assert [block.shape[0] for block in first.lexical_blocks] == [2, 2], "four segments with a text"
    empty = keeper.of(segments_of([]), body, [])  # every task coded, say
    assert empty.lexicon is first.lexicon and empty.lexical_blocks == ()
    texts = [*TEXTS, "a short back"]
    again = keeper.of(segments_of(texts), body, [])
    fresh = again.lexicon.vectorizer.transform([text for text in texts if text.strip()])
    assert abs(again.lexical_matrix() - fresh).max() < 1e-12
    sums = again.proba(lengths_and_lexical_sums, 2)[:, 1]
    np.testing.assert_allclose(sums[[0, 1, 3, 4, 5]], fresh.sum(axis=1).A1)
    assert sums[2] == 0, "the blank segment"
