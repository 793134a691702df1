"""FEATURES=tfidf+embeddings: the lexicon fitted on a project's segments, and the head's features."""

import pickle

import numpy as np
import pytest

from backend.learning.features import Lexicon, head_features, needs_refit

POOL = [
    "the cough kept me awake",
    "my cough is worse",
    "I was sad all week",
    "sad and tired all week",
    "my knee",
    "  ",
]


def test_the_lexicon_is_fitted_on_the_segments_alone_and_keeps_its_columns():
    lexicon = Lexicon.fit(POOL)
    assert lexicon.fitted_on == 5, "distinct segments that are not blank"
    assert {"cough", "my", "all week"} <= set(lexicon.vectorizer.vocabulary_)
    assert "knee" not in lexicon.vectorizer.vocabulary_, "a term of one segment tells nothing of another"
    width = len(lexicon.vectorizer.vocabulary_)
    imported = lexicon.transform(["a brand new word: asthma", "my knee hurts"])
    assert imported.shape == (2, width), "an imported task's unseen words get no column"
    assert imported[0].nnz == 0 and imported[1].nnz > 0
    np.testing.assert_allclose(
        lexicon.transform(["my knee hurts"]).toarray(),
        lexicon.vectorizer.transform(["my knee hurts"]).toarray(),
    )
    assert lexicon.transform([]).shape == (0, width)


def test_the_head_sees_unit_length_tfidf_rows_beside_unit_length_embeddings():
    lexicon = Lexicon.fit(POOL)
    embeddings = np.array([[3.0, 4.0], [0.0, 2.0]])
    texts = ["the cough kept me awake", "sad and tired all week"]
    features = head_features(texts, embeddings, lexicon).toarray()
    width = len(lexicon.vectorizer.vocabulary_)
    assert features.shape == (2, width + 2)
    np.testing.assert_allclose(features[:, width:], [[0.6, 0.8], [0.0, 1.0]])
    np.testing.assert_allclose(np.linalg.norm(features[:, :width], axis=1), 1.0)
    assert head_features(texts, embeddings, None) is embeddings, "FEATURES=embeddings: as they are"


@pytest.mark.parametrize(
    ("fitted_on", "segments", "due"), [(100, 110, False), (100, 111, True), (100, 90, False), (0, 1, True)]
)
def test_the_lexicon_is_due_again_once_the_project_grew_by_the_share(fitted_on, segments, due):
    assert needs_refit(fitted_on, segments, 0.1) is due


def test_a_saved_lexicon_keeps_its_vectorizer_not_the_rows_it_computed():
    lexicon = Lexicon.fit(POOL)
    lexicon.transform(POOL)
    loaded = pickle.loads(pickle.dumps(lexicon))
    assert loaded.fitted_on == 5 and not loaded._index
    np.testing.assert_allclose(loaded.transform(POOL).toarray(), lexicon.transform(POOL).toarray())


def test_the_rows_a_lexicon_remembers_are_bounded():
    lexicon = Lexicon.fit(POOL)  # 5 segments: it remembers at most 10 rows
    shortened = [f"my cough {i}" for i in range(7)]
    rows = lexicon.transform(shortened)
    assert len(lexicon._index) == 7, "the pool's 5 were forgotten to make room"
    np.testing.assert_allclose(rows.toarray(), lexicon.vectorizer.transform(shortened).toarray())
    assert lexicon.transform(POOL[:2]).shape[0] == 2 and len(lexicon._index) <= 10


def test_a_head_on_the_columns_its_rows_use_gives_the_probabilities_of_one_on_all():
    """A column zero in every training row keeps weight 0 under L2: cutting it changes nothing."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    from backend.learning.heads import HeadOptions, fit_head

    rng = np.random.default_rng(3)
    dense = rng.random((60, 300)) * (rng.random((60, 300)) < 0.05)
    train, test = dense[:40].copy(), dense[40:]
    train[:, 150:] = 0  # terms only the pool's other segments have
    labels = np.column_stack([train[:, :20].sum(axis=1) > np.median(train[:, :20].sum(axis=1))] * 2).astype(
        int
    )
    head = fit_head(sparse.csr_matrix(train), labels, HeadOptions())
    assert len(head.named_steps["usedcolumns"].columns_) <= 150
    whole = LogisticRegression(max_iter=1000, class_weight="balanced").fit(train, labels[:, 0])
    np.testing.assert_allclose(
        head.predict_proba(sparse.csr_matrix(test))[:, 0], whole.predict_proba(test)[:, 1], atol=1e-4
    )


def test_side_by_side_is_scipys_hstack_row_for_row():
    """Rows with no term (an empty row) and the widths at the edges, against scipy's own result."""
    from scipy import sparse

    from backend.learning.features import side_by_side

    lexical = sparse.csr_matrix(np.array([[0, 0.6, 0, 0.8], [0, 0, 0, 0], [1.0, 0, 0, 0]]))
    dense = np.arange(6, dtype=np.float32).reshape(3, 2) + 1
    found = side_by_side(lexical, dense)
    expected = sparse.hstack([lexical, sparse.csr_matrix(dense)], format="csr")
    assert found.shape == (3, 6) and found.dtype == expected.dtype and found.has_sorted_indices
    np.testing.assert_array_equal(found.toarray(), expected.toarray())
    np.testing.assert_array_equal(found.indptr, [0, 4, 6, 9])


def test_a_lexicon_is_pickled_once_and_loads_as_joblib_saved_it():
    import io

    import joblib

    lexicon = Lexicon.fit(POOL)
    saved = lexicon.saved()
    assert lexicon.saved() is saved, "every version of one fit saves the same bytes"
    loaded = joblib.load(io.BytesIO(saved))
    assert loaded.fitted_on == lexicon.fitted_on and loaded.saved() == saved
    np.testing.assert_allclose(loaded.transform(POOL).toarray(), lexicon.transform(POOL).toarray())


def _lexicon_and_embeddings(rows: int, seed: int = 5):
    rng = np.random.default_rng(seed)
    words = [f"w{n}" for n in range(40)]
    texts = [" ".join(rng.choice(words, size=6)) + f" s{n}" for n in range(rows)]
    return texts, Lexicon.fit(texts), rng.normal(size=(rows, 16)).astype(np.float32)


@pytest.mark.parametrize(
    "labels",
    [
        pytest.param(lambda n: np.column_stack([np.arange(n) % 2, np.arange(n) % 3 == 0]), id="two codes"),
        pytest.param(lambda n: np.column_stack([np.arange(n) % 2, np.zeros(n)]), id="a code never seen"),
        pytest.param(lambda n: (np.arange(n) % 2)[:, None], id="one code"),
    ],
)
def test_a_logistic_head_scores_each_side_apart_as_it_scores_them_side_by_side(labels):
    """heads.SplitHead: the fast round's pool probabilities without the side-by-side matrix."""
    from backend.learning.heads import HeadOptions, fit_head, split_head

    texts, lexicon, embeddings = _lexicon_and_embeddings(90)
    matrix = labels(60).astype(int)
    head = fit_head(head_features(texts[:60], embeddings[:60], lexicon), matrix, HeadOptions())
    split = split_head(head, len(lexicon.vectorizer.vocabulary_), embeddings.shape[1])
    assert split is not None
    pool = slice(60, 90)
    own = head.predict_proba(head_features(texts[pool], embeddings[pool], lexicon))
    own = own[:, 1:] if matrix.shape[1] == 1 and own.shape[1] == 2 else own
    np.testing.assert_allclose(split.proba(lexicon.transform(texts[pool]), embeddings[pool]), own, atol=1e-6)


def test_a_head_of_classifier_chains_is_not_split():
    from backend.learning.heads import HeadOptions, fit_head, split_head

    texts, lexicon, embeddings = _lexicon_and_embeddings(40)
    matrix = np.column_stack([np.arange(40) % 2, np.arange(40) % 3 == 0]).astype(int)
    head = fit_head(head_features(texts, embeddings, lexicon), matrix, HeadOptions(kind="chain"))
    assert split_head(head, len(lexicon.vectorizer.vocabulary_), embeddings.shape[1]) is None
