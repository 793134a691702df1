"""The project's lexicon on disk: fitted once, taken up by the next worker, fitted again when outgrown."""

import threading

import joblib
import numpy as np
import pytest

from backend.learning.features import Lexicon
from backend.storage import lexicon as lexicon_module
from backend.storage.lexicon import LexiconStore

SEGMENTS = [f"segment {i} about topic{i // 2}" for i in range(20)]  # each topic in two segments


def test_the_lexicon_is_kept_and_fitted_again_only_once_the_project_outgrew_it(tmp_path):
    path = tmp_path / "lexicon.joblib"
    first = LexiconStore(path, growth=0.1).current(SEGMENTS)
    assert first.fitted_on == 20 and path.is_file()

    later = LexiconStore(path, growth=0.1)  # a new worker
    same = later.current([*SEGMENTS, "segment 20 about topic10", "segment 21 about topic10"])
    assert same.fitted_on == 20, "two more of 20 is within a tenth"
    assert "topic10" not in same.vectorizer.vocabulary_

    grown = SEGMENTS + [f"segment {i} about topic{i // 2}" for i in range(20, 23)]
    refitted = later.current(grown)
    assert refitted.fitted_on == 23 and "topic10" in refitted.vectorizer.vocabulary_
    assert LexiconStore(path, growth=0.1).current(grown).fitted_on == 23, "the refit is kept"


def test_an_unreadable_lexicon_is_fitted_again(tmp_path, caplog):
    path = tmp_path / "lexicon.joblib"
    path.write_bytes(b"not a pickle")
    assert LexiconStore(path, growth=0.1).current(SEGMENTS).fitted_on == 20
    assert "unreadable" in caplog.text


def test_a_new_worker_takes_the_fitted_segments_rows_instead_of_transforming_them(tmp_path, monkeypatch):
    path = tmp_path / "lexicon.joblib"
    fitted = LexiconStore(path, growth=0.1).current(SEGMENTS)
    made = fitted.transform(SEGMENTS[::-1]).toarray()

    later = LexiconStore(path, growth=0.1).current(SEGMENTS)  # a new worker's first round
    monkeypatch.setattr(later.vectorizer, "transform", lambda texts: pytest.fail(f"transformed {len(texts)}"))
    np.testing.assert_array_equal(later.transform(SEGMENTS[::-1]).toarray(), made)


def test_a_lexicon_saved_without_rows_is_read_and_transforms_as_before(tmp_path):
    path = tmp_path / "lexicon.joblib"
    joblib.dump(Lexicon.fit(SEGMENTS), path)  # as written before the rows were kept
    lexicon = LexiconStore(path, growth=0.1).current(SEGMENTS)
    assert lexicon.remembered()[0] == [] and lexicon.transform(SEGMENTS).shape[0] == 20


def test_rows_of_another_lexicon_are_refused():
    lexicon = Lexicon.fit(SEGMENTS)
    texts, rows = Lexicon.fit(SEGMENTS[:10]).remembered()
    with pytest.raises(ValueError, match="one column per term"):
        lexicon.remember(texts, rows)


def test_two_workers_asking_at_once_fit_once(tmp_path, monkeypatch):
    """The pre-encoding and a first round sharing its encoding: the second waits and reads the first's."""
    path, fits, fitting, release = tmp_path / "lexicon.joblib", [], threading.Event(), threading.Event()
    fit = Lexicon.fit

    def slow_fit(texts):
        fits.append(len(texts))
        fitting.set()
        assert release.wait(30), "the test never released the fit"
        return fit(texts)

    asked = threading.Semaphore(0)
    lock = lexicon_module.file_lock

    def counted_lock(path):
        asked.release()
        return lock(path)

    monkeypatch.setattr(Lexicon, "fit", staticmethod(slow_fit))
    monkeypatch.setattr(lexicon_module, "file_lock", counted_lock)
    first = threading.Thread(target=LexiconStore(path, growth=0.1).current, args=(SEGMENTS,))
    first.start()
    assert fitting.wait(30), "the first worker never fitted"
    found: list[Lexicon] = []
    second = threading.Thread(target=lambda: found.append(LexiconStore(path, growth=0.1).current(SEGMENTS)))
    second.start()
    assert asked.acquire(timeout=30) and asked.acquire(timeout=30), "both asked for the lock"
    release.set()
    first.join(30)
    second.join(30)
    assert fits == [20] and found[0].fitted_on == 20, "one fit; the second worker read it"
