"""One test per small-text/setfit workaround in backend/compat.py: each fails without it."""

import os

import numpy as np
from scipy.sparse import csr_matrix

from backend import compat


def test_training_writes_nothing_into_the_working_directory(trained, training_cwd):
    # Without report_to="none" setfit writes ./mlflow.db; without output_dir, ./checkpoints.
    assert trained is not None
    assert os.listdir(training_cwd) == []


def test_small_text_multilabel_proba_drops_everything_at_or_below_half():
    from small_text.utils.classification import prediction_result

    proba = np.array([[0.9, 0.3, 0.5], [0.2, 0.7, 0.1]])
    _, sparse = prediction_result(proba, True, 3, return_proba=True)
    assert sparse.toarray()[0].tolist() == [0.9, 0.0, 0.0]  # 0.3 and 0.5 are gone


def test_dense_proba_keeps_every_probability(trained, texts):
    proba = compat.dense_setfit_proba(trained.setfit_model, texts)
    head = trained.setfit_model.model_head
    expected = head.predict_proba(trained.embed(texts))
    np.testing.assert_allclose(proba, expected, rtol=1e-6)
    assert ((proba > 0) & (proba < 0.5)).any()


def test_datasets_know_codes_without_positives():
    labels = np.array([[1, 0, 0], [0, 1, 0]])  # the last code has no positive yet
    from small_text import TextDataset

    inferred = TextDataset.from_arrays(["a", "b"], csr_matrix(labels))
    assert inferred.target_labels.tolist() == [0, 1]  # the library's inference loses the last code
    assert compat.multilabel_dataset(["a", "b"], labels).target_labels.tolist() == [0, 1, 2]


def _differentiable_head(model_path, arguments):
    from small_text.integrations.transformers.classifiers.setfit import SetFitClassification

    classifier = SetFitClassification(
        arguments, num_classes=3, multi_label=True, use_differentiable_head=True
    )
    return classifier.initialize().model_head


def test_differentiable_head_gets_one_sigmoid_per_code(model_path, tmp_path):
    from small_text.integrations.transformers.classifiers.setfit import SetFitModelArguments

    library_default = _differentiable_head(
        model_path, SetFitModelArguments(model_path, output_dir=str(tmp_path))
    )
    assert library_default.multitarget is False  # softmax: codes would compete

    ours = compat.setfit_arguments(
        model_path,
        seed=1,
        num_iterations=1,
        max_steps=1,
        batch_size=4,
        max_length=32,
        end_to_end=False,
        head_params={},
        show_progress_bar=False,
        output_dir=str(tmp_path),
    )
    assert _differentiable_head(model_path, ours).multitarget is True
