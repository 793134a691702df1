"""One trained model: train from (texts, label matrix), predict probabilities, save, load.

Two kinds share one interface (:class:`CodingModel`):

- ``setfit`` (default): a sentence-transformer body fine-tuned contrastively, with a
  one-vs-rest logistic-regression head (or a torch head with one sigmoid per code), trained
  through small-text's SetFit integration.
- ``transformer``: a token-level transformer classifier (small-text's transformer integration),
  much faster to train, a little weaker with few labels according to the study.

The model knows nothing of Label Studio or HTTP: codes are an ordered list of strings and
labels a 0/1 matrix with one column per code.
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.multiclass import OneVsRestClassifier

from backend import compat
from backend.config import Settings

log = logging.getLogger(__name__)

STATE_FILE = "coding_model.json"
HEAD_FILE = "head.joblib"
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)
MIN_EXAMPLES_PER_SIDE_FOR_TUNING = 4
PREDICT_CHUNK = 1000


class TrainingDataError(ValueError):
    """The texts or labels given for training cannot be used; the message says why."""


class CodingModel(ABC):
    """A trained multi-label model over an ordered list of codes."""

    kind: str

    def __init__(self, codes: Sequence[str], thresholds: Sequence[float]):
        self.codes = list(codes)
        self.thresholds = np.asarray(thresholds, dtype=np.float64)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Dense (n, codes) probabilities. A blank segment carries no code: its row is all zeros.

        Large inputs (a whole pool) are predicted in chunks, with a log line per chunk giving
        the count and an estimate of the time left.
        """
        proba = np.zeros((len(texts), len(self.codes)), dtype=np.float64)
        filled = [i for i, text in enumerate(texts) if text and text.strip()]
        started = time.perf_counter()
        for start in range(0, len(filled), PREDICT_CHUNK):
            chunk = filled[start : start + PREDICT_CHUNK]
            proba[chunk] = self._proba([texts[i] for i in chunk])
            done = start + len(chunk)
            if len(filled) > PREDICT_CHUNK:
                left = (time.perf_counter() - started) / done * (len(filled) - done)
                log.info("predicted %d/%d segments, about %.0f s left", done, len(filled), left)
        return proba

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Boolean (n, codes) decisions for pre-annotation, one threshold per code."""
        return self.decide(self.predict_proba(texts))

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Apply the per-code thresholds to probabilities already computed."""
        return proba >= self.thresholds[np.newaxis, :]

    def save(self, directory: Path) -> None:
        """Write everything needed to predict again into `directory` (which must not exist yet)."""
        directory = Path(directory)
        directory.mkdir(parents=True)
        self._save_weights(directory)
        state = {"kind": self.kind, "codes": self.codes, "thresholds": self.thresholds.tolist()}
        state.update(self._state())
        (directory / STATE_FILE).write_text(json.dumps(state, indent=2))

    @abstractmethod
    def _proba(self, texts: list[str]) -> np.ndarray: ...

    @abstractmethod
    def _save_weights(self, directory: Path) -> None: ...

    def _state(self) -> dict:
        return {}


class SetFitCodingModel(CodingModel):
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
        super().__init__(codes, thresholds)
        self.setfit_model = setfit_model
        self.max_length = max_length
        self.body_source = body_source
        setfit_model.model_body.max_seq_length = max_length

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Sentence embeddings from the fine-tuned body (what the head sees)."""
        return self.setfit_model.model_body.encode(list(texts), batch_size=32, convert_to_numpy=True)

    def head_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """Probabilities from embeddings already computed (the fast path: no encoding)."""
        if not len(embeddings):
            return np.zeros((0, len(self.codes)))
        return np.asarray(self.setfit_model.model_head.predict_proba(embeddings), dtype=np.float64)

    def with_head(
        self, head, codes: Sequence[str], thresholds: np.ndarray, body_source: str
    ) -> SetFitCodingModel:
        """A model sharing this body with another head (saved as a head-only model)."""
        from setfit import SetFitModel

        setfit_model = SetFitModel(model_body=self.setfit_model.model_body, model_head=head,
                                   multi_target_strategy="one-vs-rest")  # fmt: skip
        return SetFitCodingModel(setfit_model, codes, thresholds, self.max_length, body_source)

    def _proba(self, texts: list[str]) -> np.ndarray:
        return compat.dense_setfit_proba(self.setfit_model, texts)

    def _save_weights(self, directory: Path) -> None:
        if self.body_source:
            joblib.dump(self.setfit_model.model_head, directory / HEAD_FILE)
        else:
            self.setfit_model.save_pretrained(str(directory / "setfit"))

    def _state(self) -> dict:
        return {"max_length": self.max_length, "body_source": self.body_source}

    @classmethod
    def load(cls, directory: Path, state: dict, device: str) -> SetFitCodingModel:
        from setfit import SetFitModel

        body_source = state.get("body_source")
        body = directory / "setfit"
        if body_source:  # a version beside this one (relative to it), a local path or a hub id
            body = directory / body_source if (directory / body_source).is_dir() else body_source
        setfit_model = SetFitModel.from_pretrained(str(body), device=device)
        if body_source:
            setfit_model.model_head = joblib.load(directory / HEAD_FILE)
        return cls(setfit_model, state["codes"], state["thresholds"], state["max_length"], body_source)


def base_model(codes: Sequence[str], settings: Settings) -> SetFitCodingModel:
    """MODEL_NAME's body before any fine-tuning, for the fast loop's first versions (head to be fitted)."""
    from setfit import SetFitModel

    compat.quiet_training_environment()
    setfit_model = SetFitModel.from_pretrained(settings.model_name, device=settings.resolved_device())
    fallback = np.full(len(codes), settings.prediction_threshold)
    return SetFitCodingModel(setfit_model, codes, fallback, settings.max_length, settings.model_name)


def refit_head(
    body: SetFitCodingModel,
    body_source: str,
    embeddings: np.ndarray,
    label_matrix: np.ndarray,
    codes: Sequence[str],
    settings: Settings,
) -> SetFitCodingModel:
    """Fit the logistic head (and thresholds) on a fixed body's embeddings: seconds, not minutes."""
    label_matrix = np.asarray(label_matrix, dtype=np.int64)
    head = fit_logistic_head(embeddings, label_matrix, settings)
    thresholds = np.full(label_matrix.shape[1], settings.prediction_threshold)
    if settings.tune_thresholds:
        thresholds = tune_thresholds(embeddings, label_matrix, settings)
    return body.with_head(head, codes, thresholds, body_source)


class TransformerCodingModel(CodingModel):
    """A token-level transformer with one sigmoid output per code."""

    kind = "transformer"

    def __init__(self, hf_model, tokenizer, codes, thresholds, max_length: int, device: str):
        super().__init__(codes, thresholds)
        self.hf_model = hf_model.to(device).eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.device = device

    def _proba(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        import torch

        parts = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = self.tokenizer(
                    texts[start : start + batch_size],
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                ).to(self.device)
                parts.append(torch.sigmoid(self.hf_model(**batch).logits).cpu().numpy())
        return np.concatenate(parts).astype(np.float64)

    def _save_weights(self, directory: Path) -> None:
        self.hf_model.save_pretrained(str(directory / "transformer"))
        self.tokenizer.save_pretrained(str(directory / "transformer"))

    def _state(self) -> dict:
        return {"max_length": self.max_length}

    @classmethod
    def load(cls, directory: Path, state: dict, device: str) -> TransformerCodingModel:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = str(directory / "transformer")
        hf_model = AutoModelForSequenceClassification.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        return cls(hf_model, tokenizer, state["codes"], state["thresholds"], state["max_length"], device)


# --- training ------------------------------------------------------------------------------------


def validate_training_data(texts: Sequence[str], label_matrix: np.ndarray, codes: Sequence[str]) -> None:
    """Refuse data that would train a broken model, naming the problem."""
    if not codes:
        raise TrainingDataError("no codes given: the label config must offer at least one code")
    if len(set(codes)) != len(codes):
        raise TrainingDataError(f"codes must be unique, got {list(codes)}")
    if label_matrix.ndim != 2 or label_matrix.shape != (len(texts), len(codes)):
        raise TrainingDataError(
            f"label matrix has shape {label_matrix.shape}, expected ({len(texts)}, {len(codes)}) "
            "(one row per text, one column per code)"
        )
    if len(texts) < 2:
        raise TrainingDataError(f"need at least 2 labeled segments to train, got {len(texts)}")
    blank = [i for i, text in enumerate(texts) if not isinstance(text, str) or not text.strip()]
    if blank:
        raise TrainingDataError(
            f"{len(blank)} training text(s) are empty or whitespace (positions {blank[:10]}); "
            "drop them before training"
        )
    if not np.isin(label_matrix, (0, 1)).all():
        raise TrainingDataError("label matrix must hold only 0 and 1")


def train_model(
    texts: Sequence[str],
    label_matrix: np.ndarray,
    codes: Sequence[str],
    settings: Settings,
    *,
    show_progress: bool = False,
) -> CodingModel:
    """Train a new model of the configured kind. Deterministic for a given `settings.seed`."""
    label_matrix = np.asarray(label_matrix, dtype=np.int64)
    validate_training_data(texts, label_matrix, codes)
    compat.quiet_training_environment()
    from transformers import set_seed

    set_seed(settings.seed)
    started = time.perf_counter()
    trainer = _train_transformer if settings.model_kind == "transformer" else _train_setfit
    model = trainer(list(texts), label_matrix, list(codes), settings, show_progress)
    log.info(
        "trained %s model on %d segments x %d codes in %.1f s",
        model.kind,
        len(texts),
        len(codes),
        time.perf_counter() - started,
    )
    return model


def head_params(settings: Settings) -> dict:
    """Options of the logistic-regression head (one binary model per code)."""
    params: dict = {"max_iter": 1000}
    if settings.class_weight == "balanced":
        params["class_weight"] = "balanced"
    return params


def fit_logistic_head(features, label_matrix: np.ndarray, settings: Settings) -> OneVsRestClassifier:
    """The head SetFit fits after the body: one logistic regression per code, on fixed features.

    Used on its own to refit the head on new labels without touching the body, and by the
    benchmark to compare head options on one trained body.
    """
    return OneVsRestClassifier(LogisticRegression(**head_params(settings))).fit(features, label_matrix)


def contrastive_steps(label_matrix: np.ndarray, settings: Settings) -> int:
    """Contrastive training steps of one SetFit round: pairs / batch size, capped by SETFIT_MAX_STEPS.

    setfit draws 2 · num_iterations · n pairs; with num_iterations unset (the study's setting)
    it oversamples to twice the larger of the positive and negative pair counts over all pairs
    i ≤ j (positive: the two segments share a code), which grows with n².
    """
    n = len(label_matrix)
    if settings.setfit_num_iterations:
        pairs = 2 * settings.setfit_num_iterations * n
    else:
        shares_a_code = (label_matrix @ label_matrix.T) > 0
        positive = int(np.triu(shares_a_code).sum())
        pairs = 2 * max(positive, n * (n + 1) // 2 - positive)
    steps = -(-pairs // settings.setfit_batch_size)
    return steps if settings.setfit_max_steps < 0 else min(steps, settings.setfit_max_steps)


def _train_setfit(texts, label_matrix, codes, settings: Settings, show_progress: bool) -> SetFitCodingModel:
    from small_text.integrations.transformers.classifiers.setfit import SetFitClassification

    problem = compat.contrastive_pairs_problem(label_matrix)
    if problem:
        raise TrainingDataError(problem)
    differentiable = settings.classifier_head == "differentiable"
    steps = contrastive_steps(label_matrix, settings)
    log.info("SetFit round: %d segments, %d contrastive steps", len(texts), steps)
    with compat.private_output_dir() as output_dir:
        arguments = compat.setfit_arguments(
            settings.model_name,
            seed=settings.seed,
            num_iterations=settings.setfit_num_iterations,
            max_steps=steps,
            batch_size=settings.setfit_batch_size,
            max_length=settings.max_length,
            end_to_end=settings.end_to_end,
            head_params={} if differentiable else head_params(settings),
            show_progress_bar=show_progress,
            output_dir=output_dir,
        )
        classifier = SetFitClassification(
            arguments,
            num_classes=len(codes),
            multi_label=True,
            max_length=settings.max_length,
            use_differentiable_head=differentiable,
            device=settings.resolved_device(),
        )
        classifier.model = classifier.initialize()  # fit() keeps a model it is given
        if settings.activation_checkpointing:
            checkpoint_activations(classifier.model.model_body)
        classifier.fit(compat.multilabel_dataset(texts, label_matrix))
    fallback = np.full(len(codes), settings.prediction_threshold)
    model = SetFitCodingModel(classifier.model, codes, fallback, settings.max_length)
    if settings.tune_thresholds and not differentiable:
        model.thresholds = tune_thresholds(model.embed(texts), label_matrix, settings)
    return model


def checkpoint_activations(body) -> None:
    """Keep only each layer's input during fine-tuning and recompute the rest in the backward pass.

    A contrastive step holds the activations of 2 × batch size segments through every layer; on a
    CPU that is most of a fine-tuning's memory (docs/benchmarks.md: peak 2.1 → 1.1 GB for the
    bundled MiniLM). The random state is replayed in the recomputation, so dropout masks, and
    with them the trained body, are those of a run without checkpointing.
    """
    body[0].auto_model.activation_checkpointing_enable({"use_reentrant": False})


def _train_transformer(
    texts, label_matrix, codes, settings: Settings, show_progress: bool
) -> TransformerCodingModel:
    from small_text.integrations.transformers.classifiers.classification import (
        TransformerBasedClassification,
        TransformerModelArguments,
    )
    from small_text.integrations.transformers.datasets import TransformersDataset
    from transformers import AutoTokenizer

    device = settings.resolved_device()
    tokenizer = AutoTokenizer.from_pretrained(settings.model_name)
    dataset = compat.multilabel_dataset(
        texts, label_matrix, TransformersDataset, tokenizer=tokenizer, max_length=settings.max_length
    )
    with compat.private_output_dir() as cache_dir:
        classifier = TransformerBasedClassification(
            TransformerModelArguments(settings.model_name, show_progress_bar=show_progress),
            num_classes=len(codes),
            multi_label=True,
            num_epochs=settings.transformer_epochs,
            class_weight="balanced" if settings.class_weight == "balanced" else None,
            device=device,
            cache_dir=cache_dir,
        )
        classifier.fit(dataset)
    thresholds = np.full(len(codes), settings.prediction_threshold)
    return TransformerCodingModel(classifier.model, tokenizer, codes, thresholds, settings.max_length, device)


def out_of_fold_proba(embeddings: np.ndarray, target: np.ndarray, settings: Settings) -> np.ndarray | None:
    """P(code) for each labeled segment from a fresh logistic head that did not see it.

    Stratified k-fold (k ≤ 5, at most the size of the smaller side) on the body's embeddings;
    None when either side has fewer than two segments, so no fold could hold both.
    """
    smaller_side = int(min(target.sum(), len(target) - target.sum()))
    if smaller_side < 2:
        return None
    folds = StratifiedKFold(n_splits=min(5, smaller_side), shuffle=True, random_state=settings.seed)
    head = LogisticRegression(**head_params(settings))
    return cross_val_predict(head, embeddings, target, cv=folds, method="predict_proba")[:, 1]


def tune_thresholds(embeddings: np.ndarray, label_matrix: np.ndarray, settings: Settings) -> np.ndarray:
    """Per-code decision thresholds that maximise out-of-fold F1 of the logistic head.

    For each code, the threshold on the grid 0.05…0.95 with the best out-of-fold F1 wins (ties go
    to the one nearest the default). Codes with fewer than four positives or negatives keep the
    default threshold: too few examples to choose anything better than chance. The body has
    seen these segments in training, so the estimate is optimistic; it still moves rare codes'
    thresholds in the right direction (see docs/benchmarks.md).
    """
    default = settings.prediction_threshold
    thresholds = np.full(label_matrix.shape[1], default)
    for code in range(label_matrix.shape[1]):
        target = label_matrix[:, code]
        if min(target.sum(), len(target) - target.sum()) < MIN_EXAMPLES_PER_SIDE_FOR_TUNING:
            continue
        proba = out_of_fold_proba(embeddings, target, settings)
        scores = [f1_score(target, proba >= t, zero_division=0) for t in THRESHOLD_GRID]
        best = max(scores)
        candidates = THRESHOLD_GRID[np.isclose(scores, best)]
        thresholds[code] = float(candidates[np.argmin(np.abs(candidates - default))])
    return thresholds


def load_model(directory: Path, device: str = "cpu") -> CodingModel:
    """Load a model saved with :meth:`CodingModel.save`."""
    directory = Path(directory)
    state = json.loads((directory / STATE_FILE).read_text())
    kinds = {cls.kind: cls for cls in (SetFitCodingModel, TransformerCodingModel)}
    if state.get("kind") not in kinds:
        raise ValueError(f"{directory} holds a model of unknown kind {state.get('kind')!r}")
    return kinds[state["kind"]].load(directory, state, device)
