"""SetFit: a sentence-transformer body fine-tuned contrastively, with a multi-label head.

The head is a one-vs-rest logistic regression (or a torch layer with one sigmoid per code),
trained through small-text's SetFit integration, or an ensemble of classifier chains fitted on the
fine-tuned body's embeddings after it (learning/heads.py). The fast loop refits only the head on a body's
cached embeddings (:func:`refit_head`, a :class:`RefittedHead` that holds no body); such a model
saves its head and loads back with its body from where that was saved before. With
FEATURES=tfidf+embeddings the head sees TF-IDF rows beside the embeddings; the model then holds
the :class:`Lexicon` that made them and saves it with its version.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

import joblib
import numpy as np
from scipy import sparse

from backend.learning import compat
from backend.learning.base import CodingModel, TrainingDataError
from backend.learning.devices import resolved_device
from backend.learning.features import Lexicon, beside, head_features
from backend.learning.heads import SplitHead, duplicate_groups, fit_head, head_thresholds, split_head
from backend.learning.options import EncoderOptions, FineTuneOptions, HeadOptions, ModelOptions

log = logging.getLogger(__name__)
HEAD_FILE = "head.joblib"
LEXICON_FILE = "lexicon.joblib"


class LexicalHead:
    """What a model with FEATURES=tfidf+embeddings adds: its lexicon, saved and loaded beside the head."""

    lexicon: Lexicon | None = None
    _split_of: tuple[object, SplitHead | None] | None = None  # the head it was made for, and it

    def features(self, texts: Sequence[str], embeddings: np.ndarray):
        """The head's features for `texts` whose embeddings are given (see learning/features.py)."""
        return head_features(texts, embeddings, self.lexicon)

    def proba_of(self, texts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        """The head's probabilities for `texts` whose embeddings are given."""
        lexical = None if self.lexicon is None else self.lexicon.transform(texts)
        return self.proba_of_rows(lexical, embeddings)

    def proba_of_rows(self, lexical: sparse.spmatrix | None, embeddings: np.ndarray) -> np.ndarray:
        """The head's probabilities for segments given as their TF-IDF rows (None without a lexicon)
        and their embeddings: a logistic head on both scores each side apart (heads.SplitHead), any
        other head the two side by side."""
        if lexical is None:
            return self.head_proba(embeddings)
        split = self._split(embeddings.shape[1])
        if split is None:
            return self.head_proba(beside(lexical, embeddings))
        return split.proba(lexical, embeddings)

    def _split(self, size: int) -> SplitHead | None:
        head = self.fitted_head()
        cached = self._split_of
        if cached is None or cached[0] is not head:
            width = len(self.lexicon.vectorizer.vocabulary_)
            cached = self._split_of = (head, split_head(head, width, size))
        return cached[1]

    def fitted_head(self):
        """The scikit-learn head the model scores features with."""
        raise NotImplementedError

    def _save_lexicon(self, directory: Path) -> None:
        if self.lexicon is not None:
            (directory / LEXICON_FILE).write_bytes(self.lexicon.saved())


def saved_lexicon(directory: Path) -> Lexicon | None:
    """The lexicon saved with a version, None for a head on embeddings alone."""
    path = directory / LEXICON_FILE
    return joblib.load(path) if path.is_file() else None


class SetFitCodingModel(LexicalHead, CodingModel):
    """A SetFit model: fine-tuned sentence-transformer body plus a multi-label head.

    A model whose head was refitted on a body saved elsewhere (`body_source`: a saved SetFit
    directory or a hub id / local path of the base model) saves only its head and thresholds,
    and loads the body from there.
    """

    kind = "setfit"

    def __init__(
        self,
        setfit_model,
        codes: Sequence[str],
        thresholds: Sequence[float],
        max_length: int,
        body_source: str | None = None,
    ):
        CodingModel.__init__(self, codes, thresholds)
        self.setfit_model = setfit_model
        self.max_length = max_length
        self.body_source = body_source
        setfit_model.model_body.max_seq_length = max_length

    def embed(self, texts: Sequence[str], precision: str = "fp32") -> np.ndarray:
        """Sentence embeddings from the fine-tuned body (what the head sees).

        `precision` "bf16" encodes under bfloat16 autocast: on a CPU with native bfloat16 about
        twice as fast, with the head's probabilities within 0.003 of fp32's (docs/benchmarks.md).
        """
        body = self.setfit_model.model_body
        with compat.autocast(precision, body.device.type):
            embeddings = body.encode(list(texts), batch_size=32, convert_to_tensor=True)
        return embeddings.float().cpu().numpy()

    def fitted_head(self):
        return self.setfit_model.model_head

    def head_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """Probabilities from embeddings already computed (the fast path: no encoding)."""
        return head_proba(self.setfit_model.model_head, embeddings, len(self.codes))

    def _proba(self, texts: list[str]) -> np.ndarray:
        if self.lexicon is not None:
            return self.head_proba(self.features(texts, self.embed(texts)))
        return compat.dense_setfit_proba(self.setfit_model, texts)

    def _save_weights(self, directory: Path) -> None:
        self._save_lexicon(directory)
        if self.body_source:
            joblib.dump(self.setfit_model.model_head, directory / HEAD_FILE)
        else:
            self.setfit_model.save_pretrained(str(directory / "setfit"))

    def _state(self) -> dict:
        return {"max_length": self.max_length, "body_source": self.body_source}

    @classmethod
    def load(cls, directory: Path, state: dict, device: str) -> SetFitCodingModel:
        SetFitModel = compat.import_setfit()

        body_source = state.get("body_source")
        body = directory / "setfit"
        if body_source:  # a version beside this one (relative to it), a local path or a hub id
            body = directory / body_source if (directory / body_source).is_dir() else body_source
        setfit_model = SetFitModel.from_pretrained(str(body), device=device)
        if body_source:
            setfit_model.model_head = joblib.load(directory / HEAD_FILE)
        model = cls(setfit_model, state["codes"], state["thresholds"], state["max_length"], body_source)
        model.lexicon = saved_lexicon(directory)
        return model


class RefittedHead(LexicalHead, CodingModel):
    """A logistic head refitted on the cached embeddings of a body saved elsewhere: the fast loop's
    model of every round.

    It holds no body, so a fast lane whose body's embeddings are all cached never loads one (the
    twin of the production model weighs 0.45 GB). Saved, it is a head-only SetFit model, which
    loads back as a SetFitCodingModel with its body.
    """

    kind = SetFitCodingModel.kind

    def __init__(
        self, head, codes: Sequence[str], thresholds: Sequence[float], max_length: int, body_source: str
    ):
        CodingModel.__init__(self, codes, thresholds)
        self.head, self.max_length, self.body_source = head, max_length, body_source

    def fitted_head(self):
        return self.head

    def head_proba(self, features) -> np.ndarray:
        return head_proba(self.head, features, len(self.codes))

    def _proba(self, texts: list[str]) -> np.ndarray:
        raise TypeError("a refitted head scores embeddings (head_proba); load its saved version for texts")

    def _save_weights(self, directory: Path) -> None:
        self._save_lexicon(directory)
        joblib.dump(self.head, directory / HEAD_FILE)

    def _state(self) -> dict:
        return {"max_length": self.max_length, "body_source": self.body_source}


def head_proba(head, features, n_codes: int) -> np.ndarray:
    """A head's probabilities for features already computed (dense, one column per code)."""
    if not features.shape[0]:
        return np.zeros((0, n_codes))
    return np.asarray(head.predict_proba(features), dtype=np.float64)


def base_model(codes: Sequence[str], encoder: EncoderOptions) -> SetFitCodingModel:
    """MODEL_NAME's body before any fine-tuning, for the fast loop's first versions (its head and
    thresholds to be fitted: until then 0.5 for every code)."""
    SetFitModel = compat.import_setfit()

    compat.quiet_training_environment()
    setfit_model = SetFitModel.from_pretrained(encoder.model_name, device=resolved_device(encoder.device))
    fallback = np.full(len(codes), 0.5)
    return SetFitCodingModel(setfit_model, codes, fallback, encoder.max_length, encoder.model_name)


def refit_head(
    body_source: str,
    max_length: int,
    embeddings: np.ndarray,
    label_matrix: np.ndarray,
    codes: Sequence[str],
    options: HeadOptions,
) -> RefittedHead:
    """Fit the head (and thresholds) on a fixed body's embeddings: seconds, not minutes. For features
    beside the embeddings, see :func:`refit_lexical_head`."""
    return refit_lexical_head(
        RefittedHead(None, codes, [], max_length, body_source), embeddings, label_matrix, options
    )


def refit_lexical_head(
    unfitted: RefittedHead,
    embeddings: np.ndarray,
    label_matrix: np.ndarray,
    options: HeadOptions,
    texts: Sequence[str] = (),
) -> RefittedHead:
    """The head and thresholds fitted on `unfitted`'s features (its lexicon's, if it has one, beside
    the embeddings of `texts`); identical embeddings are one segment in the thresholds' folds."""
    label_matrix = np.asarray(label_matrix, dtype=np.int64)
    features = unfitted.features(texts, embeddings)
    unfitted.head = fit_head(features, label_matrix, options)
    unfitted.thresholds = head_thresholds(features, label_matrix, options, duplicate_groups(embeddings))
    return unfitted


def contrastive_steps(
    label_matrix: np.ndarray, num_iterations: int | None, batch_size: int, max_steps: int
) -> int:
    """Contrastive training steps of one SetFit round: pairs / batch size, capped by SETFIT_MAX_STEPS.

    setfit draws 2 · num_iterations · n pairs; with num_iterations unset (the study's setting)
    it oversamples to twice the larger of the positive and negative pair counts over all pairs
    i ≤ j (positive: the two segments share a code), which grows with n².
    """
    n = len(label_matrix)
    if num_iterations:
        pairs = 2 * num_iterations * n
    else:
        shares_a_code = (label_matrix @ label_matrix.T) > 0
        positive = int(np.triu(shares_a_code).sum())
        pairs = 2 * max(positive, n * (n + 1) // 2 - positive)
    steps = -(-pairs // batch_size)
    return steps if max_steps < 0 else min(steps, max_steps)


def frozen_share(steps: int, options: FineTuneOptions) -> float:
    """The share of layers a round of `steps` keeps fixed: FREEZE_LOWER_LAYERS once the round is long
    (FREEZE_LOWER_LAYERS_FROM_STEPS), none before. Training every layer gives the first bodies 0.03
    macro-F1 more, and a short round takes no longer that way than a long one frozen
    (docs/benchmarks.md)."""
    return options.freeze_lower_layers if steps >= options.freeze_lower_layers_from_steps else 0.0


def train_setfit(
    texts: list[str], label_matrix: np.ndarray, codes: list[str], options: ModelOptions, show_progress: bool
) -> SetFitCodingModel:
    """Fine-tune MODEL_NAME contrastively and fit the head (CLASSIFIER_HEAD) with small-text."""
    from small_text.integrations.transformers.classifiers.setfit import SetFitClassification

    from backend.learning.frozen_layers import freeze_lower_layers, lower_layers_once_per_segment

    compat.import_setfit()  # small-text imported it: its log level back
    encoder, tuning, head = options.encoder, options.fine_tune, options.head
    steps = contrastive_steps(label_matrix, tuning.num_iterations, tuning.batch_size, tuning.max_steps)
    if steps == 0:  # SETFIT_MAX_STEPS=0: no fine-tuning, the head on the base body's embeddings
        log.info("SetFit round: %d segments, no contrastive steps: the base body", len(texts))
        model = base_model(codes, encoder)
        return with_head(model, texts, model.embed(texts), label_matrix, head)
    problem = compat.contrastive_pairs_problem(label_matrix)
    if problem:
        raise TrainingDataError(problem)
    with compat.private_output_dir() as output_dir:
        arguments = compat.setfit_arguments(
            encoder.model_name,
            seed=tuning.seed,
            num_iterations=tuning.num_iterations,
            max_steps=steps,
            batch_size=tuning.batch_size,
            max_length=encoder.max_length,
            end_to_end=tuning.end_to_end,
            head_params={} if tuning.differentiable_head else head.params(),
            show_progress_bar=show_progress,
            output_dir=output_dir,
        )
        classifier = SetFitClassification(
            arguments,
            num_classes=len(codes),
            multi_label=True,
            max_length=encoder.max_length,
            use_differentiable_head=tuning.differentiable_head,
            device=resolved_device(encoder.device),
        )
        classifier.model = classifier.initialize()  # fit() keeps a model it is given
        if tuning.activation_checkpointing:
            checkpoint_activations(classifier.model.model_body)
        if tuning.freeze_word_embeddings:
            freeze_word_embeddings(classifier.model.model_body)
        body = classifier.model.model_body
        frozen = freeze_lower_layers(body, frozen_share(steps, tuning))
        log.info(
            "SetFit round: %d segments, %d contrastive steps, %d lower layers frozen",
            len(texts),
            steps,
            frozen,
        )
        weighs_codes = tuning.differentiable_head and head.class_weight == "balanced"
        torch_head = classifier.model.model_head
        loss = (
            compat.balanced_head_loss(torch_head, label_matrix) if weighs_codes else contextlib.nullcontext()
        )
        with lower_layers_once_per_segment(body, frozen), loss:
            classifier.fit(compat.multilabel_dataset(texts, label_matrix))
    model = SetFitCodingModel(
        classifier.model, codes, head.default_thresholds(len(codes)), encoder.max_length
    )
    if tuning.differentiable_head:
        return model
    # the head as the fast loop fits it (fit_head: one column per code, or chains), on the new body
    return with_head(model, texts, model.embed(texts), label_matrix, head)


def with_head(
    model: SetFitCodingModel,
    texts: list[str],
    embeddings: np.ndarray,
    label_matrix: np.ndarray,
    options: HeadOptions,
) -> SetFitCodingModel:
    """The model with its head fitted on `texts` (their `embeddings`, and with FEATURES=tfidf+embeddings
    TF-IDF beside: a whole model sees only its labeled texts, so its lexicon is fitted on those, as the
    research baseline's is; the fast loop's is fitted on the pool) and its thresholds."""
    model.lexicon = Lexicon.fit(texts) if options.lexical else None
    features = model.features(texts, embeddings)
    model.setfit_model.model_head = fit_head(features, label_matrix, options)
    model.thresholds = head_thresholds(features, label_matrix, options, duplicate_groups(texts))
    return model


def freeze_word_embeddings(body) -> None:
    """Train every layer but the word-embedding matrix (the trainer skips frozen parameters).

    With a 250,002-token vocabulary the matrix is 96M of the production model's 118M parameters;
    its gradient and Adam's two moments cost 1.15 GB while fine-tuning, for rows that a few dozen
    contrastive steps on a few hundred segments barely move (docs/benchmarks.md)."""
    body[0].auto_model.get_input_embeddings().weight.requires_grad_(False)


def checkpoint_activations(body) -> None:
    """Keep only each layer's input during fine-tuning and recompute the rest in the backward pass.

    A contrastive step holds the activations of 2 × batch size segments through every layer; on a
    CPU that is most of a fine-tuning's memory (docs/benchmarks.md: peak 2.1 → 1.1 GB for the
    bundled MiniLM). The random state is replayed in the recomputation, so dropout masks, and
    with them the trained body, are those of a run without checkpointing.
    """
    encoder = body[0].auto_model
    encoder.activation_checkpointing_enable({"use_reentrant": False})
    # transformers then also makes the word embeddings' output require a gradient (for PEFT and
    # reentrant checkpoints, neither ours). A frozen body then still ran its whole backward pass:
    # 57 % of a differentiable head's training (setfit freezes the body for it).
    encoder.disable_input_require_grads()
