"""The embedding cache: each text is encoded once per body, across restarts."""

import numpy as np

from backend.storage.embeddings import EmbeddingCache


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
