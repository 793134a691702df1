"""What a version remembers of the tasks it ranked (pool.npz)."""

from types import SimpleNamespace

import numpy as np

from backend.predictor import add_to_pool, load_decisions, load_pool, ranked_task_ids, save_pool


def test_imported_tasks_join_the_versions_pool(tmp_path):
    version = SimpleNamespace(path=tmp_path)
    save_pool(version, [1, 2], np.full((2, 3), 0.2), np.ones((4, 3)), np.zeros((2, 3), dtype=int))
    add_to_pool(version, [7], np.full((1, 3), 0.9), np.ones((1, 3), dtype=int))
    assert ranked_task_ids(version) == {1, 2, 7}
    proba, labeled = load_pool(version, 3)
    assert proba.shape == (3, 3) and labeled.shape == (4, 3), "the labeled code vectors stay as they were"
    ids, decisions = load_decisions(version)
    assert list(ids) == [1, 2, 7] and decisions[2].tolist() == [1, 1, 1]


def test_a_version_saved_without_a_pool_starts_one(tmp_path):
    version = SimpleNamespace(path=tmp_path)
    assert ranked_task_ids(version) == set()
    add_to_pool(version, [5, 6], np.full((2, 3), 0.7), np.ones((2, 3), dtype=int))
    assert ranked_task_ids(version) == {5, 6} and load_pool(version, 3)[1].shape == (0, 3)
