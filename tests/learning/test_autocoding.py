"""Re-deciding a code handed over to the model: hand-made decisions before and after, counted."""

import numpy as np

from backend.learning.autocoding import Decisions, redecision


def test_a_newer_version_redecides_the_uncoded_segments_and_counts_what_changed():
    before = Decisions.of([1, 2, 3, 4, 5, 6], [1, 1, 0, 0, 1, 0], [0.9, 0.8, 0.1, 0.2, 0.7, 0.3])
    # 2 and 5 were coded by coders, 6 was deleted, 7 was imported since; 1 and 3 flip, 4 stays
    after = Decisions.of([4, 3, 1, 7], [0, 1, 0, 1], [0.1, 0.6, 0.4, 0.9])
    found = redecision(before, after, coded={2, 5, 11})
    assert (found.gained, found.lost, found.changed) == (1, 1, 2)  # 3 gained the code, 1 lost it
    assert (found.coded, found.gone, found.joined) == (2, 1, 1)
    assert found.decisions is after


def test_held_decisions_keep_theirs_on_the_segments_still_uncoded():
    before = Decisions.of([1, 2, 3], [1, 0, 1], [0.9, 0.2, 0.8])
    kept = before.within([3, 1, 9])  # the new version's pool: 2 coded, 9 new
    assert kept.task_ids.tolist() == [1, 3] and kept.decided.tolist() == [True, True]
    assert np.allclose(kept.proba, [0.9, 0.8])
    found = redecision(before, kept, coded=[2])
    assert (found.gained, found.lost, found.coded, found.gone, found.joined) == (0, 0, 1, 0, 0)


def test_nothing_handed_over_before_gives_no_change():
    empty = Decisions.of([], [], [])
    found = redecision(empty, Decisions.of([1, 2], [1, 0], [0.7, 0.1]), coded=set())
    assert (found.changed, found.coded, found.gone, found.joined) == (0, 0, 0, 2)
