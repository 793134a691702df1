"""The core model on the bundled offline model: train -> predict -> score -> save -> load."""

import numpy as np
import pytest

from backend.config import with_overrides
from backend.domain.scheme import UnknownCodeError, label_matrix
from backend.learning.base import TrainingDataError
from backend.learning.factories import ModelFactory, load_model
from backend.learning.heads import (
    THRESHOLD_GRID,
    HeadOptions,
    f1_per_threshold,
    fit_head,
    logistic_regression,
    tune_thresholds,
)
from backend.learning.setfit_model import contrastive_steps
from backend.learning.strategies import score_pool
from backend.storage.versions import ModelStore
from tests.helpers import CODES


def test_predict_proba_gives_one_probability_per_code(trained, texts):
    proba = trained.predict_proba(texts)
    assert proba.shape == (len(texts), len(CODES))
    assert ((proba >= 0) & (proba <= 1)).all()
    assert trained.codes == CODES


def test_the_model_separates_each_code_it_has_examples_for(trained, texts, labels):
    proba = trained.predict_proba(texts)
    for j, code in enumerate(CODES):
        positives, negatives = proba[labels[:, j] == 1, j], proba[labels[:, j] == 0, j]
        assert positives.mean() > negatives.mean(), code


def test_predictions_apply_the_per_code_thresholds(trained, texts):
    proba = trained.predict_proba(texts)
    decisions = trained.predict(texts)
    assert decisions.dtype == bool
    assert np.array_equal(decisions, proba >= trained.thresholds)


def test_blank_segments_get_no_code(trained):
    proba = trained.predict_proba(["", "   \n", "My leg hurts."])
    assert (proba[:2] == 0).all()
    assert proba[2].sum() > 0


def test_pool_scoring_with_the_trained_model(trained, texts, labels):
    pool = ["My head hurts every morning.", "I like trains.", "I am sad and I cannot sleep."]
    proba = trained.predict_proba(pool)
    scores = score_pool("cviar", proba, labels, thresholds=trained.thresholds)
    assert scores.shape == (3,) and np.isfinite(scores).all()


def test_save_and_load_round_trip_to_identical_probabilities(trained, texts, tiny_settings):
    store = ModelStore(tiny_settings.server.model_dir / "roundtrip", keep=2)
    version = store.save("42", trained, n_labeled=len(texts), training_seconds=1.0, config={})
    assert version.metadata["codes"] == CODES and version.metadata["n_labeled"] == len(texts)
    loaded = store.load(store.latest("42"))
    # FEATURES=tfidf+embeddings: the loaded lexicon transforms the texts afresh, where training had
    # the rows of its fit; the two agree to the last bit or so
    np.testing.assert_allclose(loaded.predict_proba(texts), trained.predict_proba(texts), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(loaded.thresholds, trained.thresholds)


def test_training_is_deterministic_for_a_seed(trained, texts, labels, tiny_settings):
    again = ModelFactory(tiny_settings.model.model_options()).train(texts, labels, CODES)
    np.testing.assert_allclose(again.predict_proba(texts), trained.predict_proba(texts), atol=1e-6)


def test_activation_checkpointing_saves_memory_not_model_quality(trained, texts, labels, tiny_settings):
    """The body is fine-tuned with checkpointing by default; without it the same body comes out."""
    assert trained.setfit_model.model_body[0].auto_model.is_activation_checkpointing
    without = with_overrides(tiny_settings, {"activation_checkpointing": False})
    plain = ModelFactory(without.model.model_options()).train(texts, labels, CODES)
    assert not plain.setfit_model.model_body[0].auto_model.is_activation_checkpointing
    np.testing.assert_allclose(plain.embed(texts), trained.embed(texts), atol=1e-5)


def test_fine_tuning_leaves_the_word_embeddings_and_trains_the_upper_layers(trained, tiny_settings):
    from backend.learning.setfit_model import base_model

    def weights(model):
        bert = model.setfit_model.model_body[0].auto_model
        return bert.get_input_embeddings().weight, bert.encoder.layer[-1].attention.self.query.weight

    (tuned_words, tuned_layer), (base_words, base_layer) = (
        weights(trained),
        weights(base_model(CODES, tiny_settings.model.encoder_options())),
    )
    assert not tuned_words.requires_grad
    assert torch_equal(tuned_words, base_words) and not torch_equal(tuned_layer, base_layer)


def changed_layers(tuned, tiny_settings) -> list[bool]:
    """For each transformer layer of a trained model, whether fine-tuning changed it."""
    from backend.learning.setfit_model import base_model

    base = base_model(CODES, tiny_settings.model.encoder_options()).setfit_model.model_body[0].auto_model
    return [
        not torch_equal(t.attention.self.query.weight, b.attention.self.query.weight)
        for t, b in zip(tuned.encoder.layer, base.encoder.layer, strict=True)
    ]


def test_freezing_the_lower_layers_trains_only_the_upper_ones(texts, labels, tiny_settings):
    """FREEZE_LOWER_LAYERS=0.5 in a round long enough for it: no gradient below the first trained
    layer, so the embeddings and the lower half of the layers come out as they went in, and only they."""
    from backend.learning.setfit_model import base_model

    frozen = with_overrides(tiny_settings, {"freeze_lower_layers": 0.5, "freeze_lower_layers_from_steps": 6})
    tuned = (
        ModelFactory(frozen.model.model_options())
        .train(texts, labels, CODES)
        .setfit_model.model_body[0]
        .auto_model
    )
    base = base_model(CODES, tiny_settings.model.encoder_options()).setfit_model.model_body[0].auto_model
    layers = len(base.encoder.layer)
    assert changed_layers(tuned, tiny_settings) == [False] * (layers // 2) + [True] * (layers - layers // 2)
    assert torch_equal(
        tuned.embeddings.position_embeddings.weight, base.embeddings.position_embeddings.weight
    )
    assert not any(p.requires_grad for p in tuned.encoder.layer[0].parameters())
    assert not tuned.encoder.layer[0].gradient_checkpointing, "nothing to recompute below"
    assert tuned.encoder.layer[-1].gradient_checkpointing


def test_a_round_shorter_than_freeze_lower_layers_from_steps_trains_every_layer(trained, tiny_settings):
    """The session model's round has 6 steps, under the default 20: every layer learns."""
    assert tiny_settings.model.freeze_lower_layers > 0
    tuned = trained.setfit_model.model_body[0].auto_model
    assert all(changed_layers(tuned, tiny_settings))
    assert all(p.requires_grad for p in tuned.encoder.layer[0].parameters())


def test_a_round_freezes_from_freeze_lower_layers_from_steps_on(tiny_settings):
    from backend.learning.setfit_model import frozen_share

    settings = with_overrides(
        tiny_settings, {"freeze_lower_layers": 0.67, "freeze_lower_layers_from_steps": 20}
    )
    assert [frozen_share(steps, settings.model.fine_tune_options()) for steps in (1, 19, 20, 40)] == [
        0.0,
        0.0,
        0.67,
        0.67,
    ]
    always = with_overrides(tiny_settings, {"freeze_lower_layers_from_steps": 0})
    assert frozen_share(1, always.model.fine_tune_options()) == always.model.freeze_lower_layers


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


def test_bf16_encoding_moves_probabilities_by_less_than_a_hundredth(trained, texts, labels):
    """ENCODE_PRECISION=bf16: each lane fits its head on embeddings of the same precision."""
    options = HeadOptions(tune=False)
    by_precision = {}
    for precision in ("fp32", "bf16"):
        embeddings = trained.embed(texts, precision=precision)
        assert embeddings.dtype == np.float32
        by_precision[precision] = fit_head(embeddings, labels, options).predict_proba(embeddings)
    assert not np.array_equal(by_precision["fp32"], by_precision["bf16"])  # bf16 really ran
    np.testing.assert_allclose(by_precision["bf16"], by_precision["fp32"], atol=0.01)


def test_a_code_without_any_positive_does_not_break_training(texts, labels, tiny_settings):
    codes = [*CODES, "never_used"]
    with_unused = np.hstack([labels, np.zeros((len(texts), 1), dtype=int)])
    settings = with_overrides(tiny_settings, setfit_max_steps=2)
    model = ModelFactory(settings.model.model_options()).train(texts, with_unused, codes)
    proba = model.predict_proba(texts)
    assert proba.shape == (len(texts), len(codes))
    assert not model.predict(texts)[:, -1].any()


def test_empty_training_text_is_refused_by_position(texts, labels, tiny_settings):
    broken = list(texts)
    broken[3] = "  "
    with pytest.raises(TrainingDataError, match=r"empty or whitespace \(positions \[3\]\)"):
        ModelFactory(tiny_settings.model.model_options()).train(broken, labels, CODES)


def test_mismatched_label_matrix_is_refused(texts, labels, tiny_settings):
    with pytest.raises(TrainingDataError, match="label matrix has shape"):
        ModelFactory(tiny_settings.model.model_options()).train(texts[:-1], labels, CODES)


def test_an_unknown_code_is_named():
    with pytest.raises(UnknownCodeError, match="segment #1 has unknown code 'sleep'"):
        label_matrix([["physical_health"], ["sleep"]], CODES)


def test_tuned_thresholds_lower_the_bar_for_a_rare_code(tiny_settings):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 4))
    rare = (features[:, 0] > 1.1).astype(int)  # about 8 positives, hard for an unweighted head
    too_rare = np.zeros(60, dtype=int)
    too_rare[:3] = 1
    options = HeadOptions(class_weight="none", default_threshold=0.5, seed=7)
    thresholds = tune_thresholds(features, np.column_stack([rare, too_rare]), options)
    assert thresholds[0] < 0.5
    assert thresholds[1] == 0.5  # three positives: keep the default


@pytest.mark.parametrize(("shrinkage", "expected"), [(0, 0.30), (10, 0.425), (2, 0.35)])
def test_tuned_thresholds_shrink_toward_the_default_with_few_positives(shrinkage, expected):
    """6 positives at P 0.32, 14 negatives at 0.10: every threshold from 0.15 to 0.30 separates them,
    and of these 0.30 is nearest 0.5. Shrunk: 0.5 + (0.30 - 0.5) * 6 / (6 + shrinkage)."""
    from backend.learning.heads import thresholds_of

    target = np.array([1] * 6 + [0] * 14)
    proba = np.where(target == 1, 0.32, 0.10)
    few = np.array([1] * 3 + [0] * 17)  # three positives: the default, whatever the evidence
    options = HeadOptions(threshold_shrinkage=shrinkage)
    thresholds = thresholds_of(
        [proba, np.where(few == 1, 0.32, 0.1)], np.column_stack([target, few]), options
    )
    np.testing.assert_allclose(thresholds, [expected, 0.5])


def test_more_positives_move_a_threshold_further_from_the_default():
    from backend.learning.heads import shrunk

    assert shrunk(0.2, 0.5, 10, 10) == pytest.approx(0.35)
    assert shrunk(0.2, 0.5, 90, 10) == pytest.approx(0.23)
    assert shrunk(0.8, 0.5, 30, 10) == pytest.approx(0.725)


def test_differentiable_head_is_really_multi_label(texts, labels, tiny_settings):
    settings = with_overrides(tiny_settings, classifier_head="differentiable", setfit_max_steps=2)
    model = ModelFactory(settings.model.model_options()).train(texts, labels, CODES)
    proba = model.predict_proba(texts)
    assert proba.shape == (len(texts), len(CODES))
    assert not np.allclose(proba.sum(axis=1), 1.0)  # independent sigmoids, not a softmax


def test_a_frozen_checkpointed_body_runs_no_backward_pass(tiny_settings):
    from backend.learning.setfit_model import base_model, checkpoint_activations

    body = base_model(CODES, tiny_settings.model.encoder_options()).setfit_model.model_body
    checkpoint_activations(body)
    body.requires_grad_(False)  # what setfit does to train a differentiable head alone
    body.train()
    features = body.tokenize(["My knee hurts.", "I sleep badly."])
    assert not body(features)["sentence_embedding"].requires_grad
    body[0].auto_model.enable_input_require_grads()  # what activation_checkpointing_enable leaves on
    assert body(features)["sentence_embedding"].requires_grad  # a backward pass through every layer
    body[0].auto_model.disable_input_require_grads()
    body[0].auto_model.encoder.layer[-1].requires_grad_(True)  # a trained top layer still learns
    body(features)["sentence_embedding"].sum().backward()
    assert body[0].auto_model.encoder.layer[-1].output.dense.weight.grad is not None


def test_transformer_kind_has_the_same_interface(texts, labels, tiny_settings, tmp_path):
    settings = with_overrides(tiny_settings, model_kind="transformer", transformer_epochs=1)
    model = ModelFactory(settings.model.model_options()).train(texts, labels, CODES)
    proba = model.predict_proba(texts)
    assert proba.shape == (len(texts), len(CODES)) and model.kind == "transformer"
    model.save(tmp_path / "m")
    np.testing.assert_allclose(load_model(tmp_path / "m").predict_proba(texts), proba, atol=1e-6)


def test_contrastive_steps_match_setfits_pair_sampler(labels, tiny_settings):
    from setfit.sampler import ContrastiveDataset

    sampler = ContrastiveDataset([f"t{i}" for i in range(len(labels))], labels.tolist(), multilabel=True)
    pairs = 2 * max(len(sampler.pos_pairs), len(sampler.neg_pairs))
    assert contrastive_steps(labels, None, 16, -1) == -(-pairs // 16)
    assert contrastive_steps(labels, None, 16, 5) == 5
    assert contrastive_steps(labels, 2, 16, -1) == -(-(2 * 2 * len(labels)) // 16)


def test_the_chain_head_is_multi_label_and_keeps_constant_codes(tmp_path):
    import joblib

    from backend.learning.heads import ChainEnsemble

    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 3))
    first = (features[:, 0] > 0).astype(int)
    second = first & (features[:, 1] > 0)  # correlated: only with the first
    matrix = np.column_stack([first, np.zeros(40, dtype=int), second, np.ones(40, dtype=int)])
    options = HeadOptions(kind="chain", chains=3, seed=1)
    head = fit_head(features, matrix, options)
    assert isinstance(head, ChainEnsemble) and len(head.chains_) == 3
    proba = head.predict_proba(features)
    assert proba.shape == (40, 4) and ((proba >= 0) & (proba <= 1)).all()
    assert (proba[:, 1] == 0).all() and (proba[:, 3] == 1).all(), "no positive (all positive) yet: constant"
    assert ((proba[:, 0] >= 0.5) == first).mean() > 0.9
    joblib.dump(head, tmp_path / "head.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "head.joblib").predict_proba(features), proba)
    by_frequency = fit_head(features, matrix, HeadOptions(kind="chain", chain_order="frequency"))
    assert len(by_frequency.chains_) == 1, "one order: every chain would be the same"
    assert list(by_frequency.chains_[0].order_) == [0, 1]  # of the varying codes: first before second
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the folds split quietly: no warning per round in the log
        thresholds = tune_thresholds(features, matrix, options)
    assert thresholds.shape == (4,) and thresholds[1] == thresholds[3] == 0.5


def test_a_setfit_model_with_the_chain_head_trains_saves_and_refits(texts, labels, tiny_settings, tmp_path):
    from backend.learning.heads import ChainEnsemble
    from backend.learning.setfit_model import refit_head

    overrides = {"classifier_head": "chain", "chains": 2, "setfit_max_steps": 2, "features": "embeddings"}
    settings = with_overrides(tiny_settings, overrides)  # the chains on the embeddings, as setfit holds them
    assert settings.two_speed, "the fast loop refits chains like logistic heads"
    model = ModelFactory(settings.model.model_options()).train(texts, labels, CODES)
    assert isinstance(model.setfit_model.model_head, ChainEnsemble)
    proba = model.predict_proba(texts)
    assert proba.shape == (len(texts), len(CODES))
    np.testing.assert_allclose(model.head_proba(model.embed(texts)), proba, atol=1e-6)
    model.save(tmp_path / "m")
    np.testing.assert_allclose(load_model(tmp_path / "m").predict_proba(texts), proba, atol=1e-6)
    refitted = refit_head("body", 64, model.embed(texts), labels, CODES, settings.model.head_options())
    assert isinstance(refitted.head, ChainEnsemble) and refitted.thresholds.shape == (len(CODES),)


def test_no_contrastive_steps_is_a_head_on_the_base_body(texts, labels, tiny_settings, tmp_path):
    from backend.learning.setfit_model import base_model

    settings = with_overrides(tiny_settings, setfit_max_steps=0, classifier_head="chain", chains=2)
    model = ModelFactory(settings.model.model_options()).train(texts, labels, CODES)
    base = base_model(CODES, settings.model.encoder_options())
    np.testing.assert_allclose(model.embed(texts[:3]), base.embed(texts[:3]), atol=1e-6)
    model.save(tmp_path / "m")  # the head alone: the body is MODEL_NAME's
    assert not (tmp_path / "m" / "setfit").exists()
    np.testing.assert_allclose(
        load_model(tmp_path / "m").predict_proba(texts), model.predict_proba(texts), atol=1e-6
    )
    with pytest.raises(Exception, match="SETFIT_MAX_STEPS=0"):
        with_overrides(tiny_settings, setfit_max_steps=0, classifier_head="differentiable")


def test_a_whole_model_with_tfidf_beside_the_embeddings_saves_and_loads_its_lexicon(
    texts, labels, tiny_settings, tmp_path
):
    """A whole model (full rounds, simulations) sees only its labeled texts: its lexicon is fitted on
    those; its head's input is the TF-IDF row beside the unit-length embedding."""
    settings = with_overrides(tiny_settings, setfit_max_steps=0, features="tfidf+embeddings")
    model = ModelFactory(settings.model.model_options()).train(texts, labels, CODES)
    assert model.lexicon is not None and model.lexicon.fitted_on == len(set(texts))
    width = len(model.lexicon.vectorizer.vocabulary_) + model.embed(texts[:1]).shape[1]
    used = model.setfit_model.model_head.named_steps["usedcolumns"].columns_
    assert len(used) == width, "a lexicon of the labeled texts: every column is some labeled row's"
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.lexicon.vectorizer.vocabulary_ == model.lexicon.vectorizer.vocabulary_
    np.testing.assert_allclose(loaded.predict_proba(texts), model.predict_proba(texts), atol=1e-6)


def test_one_code_gets_one_probability_column():
    """scikit-learn's one-vs-rest takes a one-column label matrix for a binary problem and answers
    with two columns; our head keeps one per code (a form with one yes/no question)."""
    from sklearn.multiclass import OneVsRestClassifier

    from backend.learning.heads import duplicate_groups

    rng = np.random.default_rng(0)
    features = rng.normal(size=(20, 3))
    one_code = (features[:, 0] > 0).astype(int)[:, None]
    assert OneVsRestClassifier(logistic_regression(HeadOptions())).fit(features, one_code).predict_proba(
        features
    ).shape == (20, 2), "the library's behaviour this works around"
    proba = fit_head(features, one_code, HeadOptions()).predict_proba(features)
    assert proba.shape == (20, 1) and ((proba[:, 0] >= 0.5) == one_code[:, 0]).mean() > 0.8
    assert list(duplicate_groups(["b", "a", "b"])) == [1, 0, 1]
    assert list(duplicate_groups(np.array([[1.0, 2.0], [0.0, 1.0], [1.0, 2.0]]))) == [1, 0, 1]


def test_chain_folds_need_two_groups():
    from backend.learning.heads import out_of_fold_probas

    features, matrix = np.eye(4), np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    one_segment = np.zeros(4, dtype=int)  # four coders' rows of one segment: nothing to fold
    assert out_of_fold_probas(features, matrix, HeadOptions(kind="chain"), one_segment) == [None, None]


def test_f1_per_threshold_equals_one_f1_score_per_threshold():
    """The one-call F1 over every threshold of the tuning grid gives what a call per threshold gives,
    on edge cases too: no positives, all positives, no decision above any threshold."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(3)
    cases = [(rng.integers(0, 2, 40), rng.random(40)) for _ in range(30)]
    cases += [
        (np.zeros(10, int), rng.random(10)),
        (np.ones(10, int), rng.random(10)),
        (np.ones(5, int), np.zeros(5)),
    ]
    for target, proba in cases:
        expected = [f1_score(target, proba >= t, zero_division=0) for t in THRESHOLD_GRID]
        assert f1_per_threshold(target, proba, THRESHOLD_GRID) == pytest.approx(expected)


def test_heads_fit_with_one_blas_thread_and_give_the_threads_back(monkeypatch):
    from threadpoolctl import threadpool_info, threadpool_limits

    import backend.learning.heads as heads

    def blas_threads() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    seen = []
    fit = heads.LogisticRegression.fit

    def spying_fit(self, *args, **kwargs):
        seen.append(blas_threads())
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(heads.LogisticRegression, "fit", spying_fit)
    rng = np.random.default_rng(0)
    features, matrix = rng.normal(size=(20, 3)), (rng.random((20, 2)) < 0.5).astype(int)
    with threadpool_limits(limits=2, user_api="blas"):  # two, even on a one-core machine
        before = blas_threads()
        assert before and all(threads == 2 for threads in before), "numpy has a BLAS"
        assert heads.one_blas_thread(blas_threads)() == [1] * len(before)
        assert blas_threads() == before
        fit_head(features, matrix, HeadOptions())
        tune_thresholds(features, matrix, HeadOptions())
    assert len(seen) > 2 and all(threads == [1] * len(before) for threads in seen)


def test_torch_threads_sleep_while_they_wait_unless_told_otherwise():
    import os
    import subprocess
    import sys

    ask = "import backend, torch, os; print(os.environ['OMP_WAIT_POLICY'])"
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    # unset; empty (compose's way of passing an unset variable); set
    for given, expected in ((None, "PASSIVE"), ("", "PASSIVE"), ("ACTIVE", "ACTIVE")):
        if given is not None:
            env["OMP_WAIT_POLICY"] = given
        found = subprocess.run([sys.executable, "-c", ask], env=env, capture_output=True, text=True)
        assert found.stdout.strip() == expected, (given, found.stderr[-500:])
