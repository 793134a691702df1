"""What each part of the ML core is told, as small frozen values, and the names it understands.

As scikit-learn estimators take their hyper-parameters as arguments and never read a global
configuration, the models, heads and strategies take these options, never the settings: config
builds them from the model settings in one place, and validates the settings against the names
listed here. This module imports neither torch nor the learning modules that do, so
reading the settings stays light.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODEL_KINDS = ("setfit", "transformer")  # MODEL_KIND: the kinds a project serves
HEADS = ("logistic", "differentiable", "chain")  # CLASSIFIER_HEAD
CHAIN_ORDERS = ("random", "frequency")  # CHAIN_ORDER
CLASS_WEIGHTS = ("balanced", "none")  # CLASS_WEIGHT
DEVICES = ("auto", "cpu", "cuda")  # DEVICE
PRECISIONS = ("auto", "fp32", "bf16")  # ENCODE_PRECISION
STRATEGIES = ("cviar", "entropy", "random", "lci", "adaptive")  # QUERY_STRATEGY
FEATURES = ("embeddings", "tfidf+embeddings")  # FEATURES: what the head sees (learning/features.py)


@dataclass(frozen=True)
class EncoderOptions:
    """The pretrained model that encodes segments, and how: MODEL_NAME, MAX_LENGTH, DEVICE and
    ENCODE_PRECISION ("auto" is resolved where torch is loaded: learning/devices.py)."""

    model_name: str
    max_length: int
    device: str
    precision: str


@dataclass(frozen=True)
class FineTuneOptions:
    """How a body is trained: SetFit's contrastive budget (SETFIT_*), what it keeps fixed
    (FREEZE_*, ACTIVATION_CHECKPOINTING), whether a differentiable head trains with it (END_TO_END),
    and the transformer's TRANSFORMER_EPOCHS and TRANSFORMER_LEARNING_RATE; SEED for all."""

    seed: int
    num_iterations: int | None
    max_steps: int
    batch_size: int
    differentiable_head: bool
    end_to_end: bool
    activation_checkpointing: bool
    freeze_word_embeddings: bool
    freeze_lower_layers: float
    freeze_lower_layers_from_steps: int
    epochs: int
    learning_rate: float


@dataclass(frozen=True)
class HeadOptions:
    """What the head and its thresholds depend on: CLASS_WEIGHT, PREDICTION_THRESHOLD, TUNE_THRESHOLDS,
    SEED, for CLASSIFIER_HEAD=chain, CHAINS and CHAIN_ORDER, the FEATURES it sees, and how far tuned
    thresholds shrink toward the default (THRESHOLD_SHRINKAGE). C stays 1: choosing it by the
    out-of-fold evidence did not beat 1 on held-out segments (docs/benchmarks.md)."""

    class_weight: str = "balanced"
    default_threshold: float = 0.5
    tune: bool = True
    seed: int = 42
    kind: str = "logistic"  # or "chain"
    chains: int = 5
    chain_order: str = "random"  # or "frequency"
    features: str = "embeddings"  # or "tfidf+embeddings"
    c: float = 1.0  # the logistic regressions' inverse regularisation strength
    threshold_shrinkage: float = 10.0  # THRESHOLD_SHRINKAGE: segments at the default (heads.shrunk)

    @property
    def lexical(self) -> bool:
        """Whether the head sees TF-IDF features beside the embeddings."""
        return self.features == "tfidf+embeddings"

    def params(self) -> dict:
        """Options of each code's logistic regression (also handed to setfit for its own head)."""
        params: dict = {"max_iter": 1000, "C": self.c}
        if self.class_weight == "balanced":
            params["class_weight"] = "balanced"
        return params

    def default_thresholds(self, num_codes: int) -> np.ndarray:
        return np.full(num_codes, self.default_threshold)


@dataclass(frozen=True)
class JudgeOptions:
    """How a fine-tuned body is judged against the base body (learning/body_choice.py): the head fit
    on each, and the paired bootstrap whose one-sided `confidence` lower bound of the macro-F1 gain
    must be above 0 (`resamples` draws, seeded with the head's SEED)."""

    head: HeadOptions
    confidence: float = 0.95
    resamples: int = 2000


@dataclass(frozen=True)
class StrategyOptions:
    """How the pool is ranked: QUERY_STRATEGY, and the seed of the random strategy."""

    name: str
    seed: int


@dataclass(frozen=True)
class ModelOptions:
    """What a model factory trains with: the kind, and the options of each part it trains."""

    kind: str
    encoder: EncoderOptions
    fine_tune: FineTuneOptions
    head: HeadOptions
