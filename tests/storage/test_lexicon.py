"""The project's lexicon on disk: fitted once, taken up by the next worker, fitted again when outgrown."""

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
