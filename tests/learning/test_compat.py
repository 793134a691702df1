"""One test per small-text/setfit workaround in backend/compat.py: each fails without it."""

import os

import numpy as np
from scipy.sparse import csr_matrix

from backend.learning import compat


def test_training_writes_nothing_into_the_working_directory(trained, training_cwd):
    # Without report_to="none" setfit writes ./mlflow.db; without output_dir, ./checkpoints.
    assert trained is not None
    assert os.listdir(training_cwd) == []


def test_small_text_multilabel_proba_drops_everything_at_or_below_half():
    from small_text.utils.classification import prediction_result

    proba = np.array([[0.9, 0.3, 0.5], [0.2, 0.7, 0.1]])
    _, sparse = prediction_result(proba, True, 3, return_proba=True)
    assert sparse.toarray()[0].tolist() == [0.9, 0.0, 0.0]  # 0.3 and 0.5 are gone


def test_dense_proba_keeps_every_probability(trained, texts, labels):
    import copy

    from backend.learning.heads import HeadOptions, fit_head

    setfit_model = copy.copy(trained.setfit_model)  # the body shared, a head on the embeddings alone
    head = setfit_model.model_head = fit_head(
        trained.embed(texts), labels, HeadOptions(features="embeddings")
    )
    proba = compat.dense_setfit_proba(setfit_model, texts)
    expected = head.predict_proba(trained.embed(texts))
    np.testing.assert_allclose(proba, expected, rtol=1e-6)
    assert ((proba > 0) & (proba < 0.5)).any()


def test_datasets_know_codes_without_positives():
    labels = np.array([[1, 0, 0], [0, 1, 0]])  # the last code has no positive yet
    from small_text import TextDataset

    inferred = TextDataset.from_arrays(["a", "b"], csr_matrix(labels))
    assert inferred.target_labels.tolist() == [0, 1]  # the library's inference loses the last code
    assert compat.multilabel_dataset(["a", "b"], labels).target_labels.tolist() == [0, 1, 2]


def test_multi_label_class_weights_are_each_codes_negatives_over_positives(model_path):
    from small_text.integrations.pytorch.utils.data import get_class_weights

    # 8 segments: code 0 on 6 (negatives/positives 2/6), code 1 on 2 (6/2), code 2 on 4 (4/4)
    labels = np.array([[1, 0, 1]] * 2 + [[1, 1, 1]] * 2 + [[1, 0, 0]] * 2 + [[0, 0, 0]] * 2)
    library = get_class_weights(csr_matrix(labels), 3).numpy()
    # the library: (all codes' positives − this code's) / this code's, so a code on three segments
    # in four is weighed up, not down
    np.testing.assert_allclose(library, [(12 - 6) / 6, (12 - 2) / 2, (12 - 4) / 4])
    np.testing.assert_allclose(compat.multilabel_pos_weight(labels), [2 / 6, 6 / 2, 1.0])
    assert compat.multilabel_pos_weight(np.array([[0, 1], [0, 1]])).tolist() == [1.0, 1.0]

    from small_text.integrations.transformers.classifiers.classification import TransformerModelArguments

    classifier = compat.balanced_transformer_classification(
        TransformerModelArguments(model_path), num_classes=3, multi_label=True, class_weight="balanced"
    )
    dataset = compat.multilabel_dataset([f"t{i}" for i in range(8)], labels)
    weights = classifier.initialize_class_weights(dataset).numpy()
    np.testing.assert_allclose(weights, [2 / 6, 6 / 2, 1.0], rtol=1e-6)  # what fit() puts into the loss


def _our_arguments(model_path, tmp_path):
    """The arguments train_setfit passes, for a one-step run."""
    return compat.setfit_arguments(
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

    assert _differentiable_head(model_path, _our_arguments(model_path, tmp_path)).multitarget is True


def test_setfit_fails_without_negative_pairs_and_we_say_why(model_path, tmp_path):
    import pytest
    from setfit.sampler import ContrastiveDataset

    everyone_shares = np.array([[1, 0], [1, 1], [1, 0]])
    pairs = ContrastiveDataset(["a", "b", "c"], everyone_shares.tolist(), multilabel=True, num_iterations=1)
    with pytest.raises(IndexError):
        list(pairs)
    assert "share a code" in compat.contrastive_pairs_problem(everyone_shares)
    assert "no labeled segment has a code" in compat.contrastive_pairs_problem(np.zeros((3, 2), dtype=int))
    assert compat.contrastive_pairs_problem(np.array([[1, 0], [0, 1]])) is None


def verbosity_after(code: str) -> int:
    """setfit's log level after running `code` in a fresh interpreter that asks for errors only."""
    import subprocess
    import sys

    show = "; from setfit import logging as setfit_logging; print(setfit_logging.get_verbosity())"
    env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error"}
    ran = subprocess.run([sys.executable, "-c", code + show], capture_output=True, text=True, env=env)
    return int(ran.stdout.split()[-1])


def test_setfit_keeps_the_log_level_asked_for():
    assert verbosity_after("import setfit.data") == 20, (
        "setfit sets INFO on import (fixed? drop the workaround)"
    )
    assert (
        verbosity_after("import setfit.data; from backend.learning import compat; compat.import_setfit()")
        == 40
    )


def test_training_prints_nothing_without_a_progress_bar(tiny_settings, texts, labels, capfd):
    from backend.learning.factories import ModelFactory
    from tests.helpers import CODES

    ModelFactory(tiny_settings.model.model_options()).train(texts, labels, CODES)
    printed = capfd.readouterr()
    assert "embedding_loss" not in printed.out + printed.err, "the trainer's loss dictionaries"


def test_the_differentiable_head_weighs_each_codes_positives_only_while_it_trains(model_path, tmp_path):
    """setfit's head loss is an unweighted BCE (the limitation); balanced_head_loss gives it each code's
    negatives / positives and takes it back, so the trained head still pickles."""
    import pickle

    import torch

    head = _differentiable_head(model_path, _our_arguments(model_path, tmp_path))
    assert head.get_loss_fn().pos_weight is None  # the library's loss
    labels = np.array([[1, 0, 1], [1, 1, 0], [1, 0, 1], [0, 0, 1]])
    with compat.balanced_head_loss(head, labels):
        loss = head.get_loss_fn()
        assert isinstance(loss, torch.nn.BCEWithLogitsLoss)
        np.testing.assert_allclose(loss.pos_weight.numpy(), [1 / 3, 3, 1 / 3], rtol=1e-6)
    assert head.get_loss_fn().pos_weight is None
    pickle.dumps(head)
