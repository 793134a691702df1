"""What a version remembers of the tasks it ranked (pool.npz)."""

import numpy as np

from backend.storage.ranked_pool import RankedPool, read_ranked_pool, write_ranked_pool


def test_imported_tasks_join_the_versions_pool(tmp_path):
    pool = RankedPool(np.array([1, 2]), np.full((2, 3), 0.2), np.zeros((2, 3), dtype=int), np.ones((4, 3)))
    write_ranked_pool(tmp_path, pool)
    grown = read_ranked_pool(tmp_path).with_tasks([7], np.full((1, 3), 0.9), np.ones((1, 3), dtype=int))
    write_ranked_pool(tmp_path, grown)
    again = read_ranked_pool(tmp_path)
    assert again.ids() == {1, 2, 7}
    assert again.proba.shape == (3, 3) and again.labeled.shape == (4, 3), (
        "the labeled vectors stay as they were"
    )
    assert list(again.task_ids) == [1, 2, 7] and again.decisions[2].tolist() == [1, 1, 1]
    assert [p.name for p in tmp_path.iterdir()] == ["pool.npz"], "no partial file is left behind"


def test_a_version_saved_without_a_pool_starts_one(tmp_path):
    assert read_ranked_pool(tmp_path) is None
    started = RankedPool.empty(3).with_tasks([5, 6], np.full((2, 3), 0.7), np.ones((2, 3), dtype=int))
    write_ranked_pool(tmp_path, started)
    assert read_ranked_pool(tmp_path).ids() == {5, 6} and read_ranked_pool(tmp_path).labeled.shape == (0, 3)
