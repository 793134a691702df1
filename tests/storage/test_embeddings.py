"""The embedding cache: each text is encoded once per body, across restarts."""

import hashlib

import numpy as np
import pytest

from backend.storage.embeddings import EmbeddingCache
from backend.storage.layout import StoreLayout


class CountingEncoder:
    def __init__(self):
        self.seen = []

    def __call__(self, texts):
        self.seen.extend(texts)
        return np.array([[len(t), t.count("a")] for t in texts], dtype=np.float32)


def test_only_new_texts_are_encoded_and_a_restart_costs_nothing(tmp_path):
    encode = CountingEncoder()
    cache = EmbeddingCache(tmp_path / "body")
    first = cache.embed(["aa", "b", "aa"], encode)
    assert encode.seen == ["aa", "b"]
    np.testing.assert_array_equal(first, [[2, 2], [1, 0], [2, 2]])
    cache.embed(["b", "cat"], encode)
    assert encode.seen == ["aa", "b", "cat"]

    restarted, fresh = EmbeddingCache(tmp_path / "body"), CountingEncoder()
    np.testing.assert_array_equal(restarted.embed(["cat", "aa"], fresh), [[3, 1], [2, 2]])
    assert fresh.seen == [] and len(restarted) == 3
    assert restarted.embed([], fresh).shape[0] == 0


def test_a_pool_is_looked_up_as_rows_with_new_texts_encoded_first(tmp_path):
    """The fast lane's pool: rows of the cache, whose embeddings are then taken a chunk at a time
    (never copied whole), the same as `embed` gives them."""
    encode, cache = CountingEncoder(), EmbeddingCache(tmp_path)
    cache.embed(["aa", "b"], encode)
    texts = ["b", "cat", "aa", "b", "dada"]
    rows = cache.rows(texts, encode)
    assert encode.seen == ["aa", "b", "cat", "dada"], "only the new ones encoded, before any lookup"
    chunks = [cache.matrix_rows(rows[:2]), cache.matrix_rows(rows[2:])]
    np.testing.assert_array_equal(np.vstack(chunks), cache.embed(texts, encode))
    np.testing.assert_array_equal(np.vstack(chunks), [[1, 0], [3, 1], [2, 2], [1, 0], [4, 2]])
    assert cache.matrix_rows(cache.rows([], encode)).shape[0] == 0


def test_another_process_shards_are_picked_up(tmp_path):
    one, two = EmbeddingCache(tmp_path), EmbeddingCache(tmp_path)
    one.embed(["x"], CountingEncoder())
    later = CountingEncoder()
    two.embed(["y"], later)
    assert later.seen == ["y"]
    assert len(two) == 2 and len(one) == 2


def test_an_unreadable_shard_is_set_aside_and_its_texts_encoded_again(tmp_path):
    EmbeddingCache(tmp_path).embed(["kept"], CountingEncoder())
    EmbeddingCache(tmp_path).embed(["lost"], CountingEncoder())
    lost = max(tmp_path.glob("shard-*.npz"))
    lost.write_bytes(lost.read_bytes()[:40])  # cut short by a crash or a full disk
    encode = CountingEncoder()
    np.testing.assert_array_equal(EmbeddingCache(tmp_path).embed(["kept", "lost"], encode), [[4, 0], [4, 0]])
    assert encode.seen == ["lost"]
    assert (tmp_path / f"broken-{lost.name}").exists() and len(list(tmp_path.glob("shard-*.npz"))) == 2


class Interrupted(Exception):
    pass


def test_an_interrupted_encoding_resumes_where_it_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr("backend.storage.embeddings.ENCODE_CHUNK", 2)
    texts = ["a", "bb", "ccc", "dddd", "eeeee"]
    encode = CountingEncoder()

    def killed_after_two_chunks(chunk):
        if len(encode.seen) >= 4:
            raise Interrupted
        return encode(chunk)

    with pytest.raises(Interrupted):
        EmbeddingCache(tmp_path).embed(texts, killed_after_two_chunks)
    resumed = CountingEncoder()
    vectors = EmbeddingCache(tmp_path).embed(texts, resumed)
    assert resumed.seen == ["eeeee"], "the two chunks done before the kill are kept"
    np.testing.assert_array_equal(vectors[:, 0], [1, 2, 3, 4, 5])


def test_two_processes_encoding_the_same_pool_never_encode_a_text_twice(tmp_path, monkeypatch):
    import threading

    monkeypatch.setattr("backend.storage.embeddings.ENCODE_CHUNK", 3)
    texts = [f"segment {n}" for n in range(30)]
    encoders = [CountingEncoder(), CountingEncoder()]
    workers = [
        threading.Thread(target=EmbeddingCache(tmp_path).embed, args=(texts, encode)) for encode in encoders
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    encoded = encoders[0].seen + encoders[1].seen
    assert sorted(encoded) == sorted(texts), "each text encoded exactly once between the two"
    assert len(EmbeddingCache(tmp_path)) == 30


def test_each_precision_has_its_own_cache_and_fp32_keeps_the_old_one(tmp_path):
    """Switching ENCODE_PRECISION never mixes embeddings; caches written before it still count."""
    layout = StoreLayout(tmp_path)
    old_key = hashlib.sha1(b"model|128").hexdigest()[:16]
    assert layout.base_embeddings("model", 128) == tmp_path / ".embeddings" / old_key
    assert layout.base_embeddings("model", 128, "fp32") == layout.base_embeddings("model", 128)
    assert layout.base_embeddings("model", 128, "bf16") != layout.base_embeddings("model", 128)
    version = tmp_path / "p" / "v3-x"
    assert layout.version_embeddings(version) == version / "embeddings"
    assert layout.version_embeddings(version, "bf16") == version / "embeddings-bf16"
