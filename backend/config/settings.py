"""Typed settings from environment variables, in three groups: one place, validated once at start.

Every knob a project lead may turn lives here, so a wrong value fails at start with a message that
names the variable and the allowed values, instead of deep inside a round. The variables keep flat
names (``MODEL_NAME``, ``FAST_LOOP``, ``PORT``); in code they come in three groups, so each part
takes only what it uses:

- :class:`ModelSettings`: the model and how it is trained and queried (what a research grid varies);
- :class:`LoopSettings`: the active-learning loop (when to train, what to write, which coders);
- :class:`ServerSettings`: where things live and how to reach them (storage, Label Studio, MLflow,
  Redis, HTTP), in config/server.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode

from backend.config.redact import hide_credentials
from backend.config.server import FROM_ENVIRONMENT, ServerSettings
from backend.domain.annotations import CODER_RULES
from backend.domain.scheme import DEFAULT_NONE_CHOICES
from backend.learning.options import (
    CHAIN_ORDERS,
    CLASS_WEIGHTS,
    DEVICES,
    FEATURES,
    HEADS,
    MODEL_KINDS,
    PRECISIONS,
    STRATEGIES,
    EncoderOptions,
    FineTuneOptions,
    HeadOptions,
    ModelOptions,
    StrategyOptions,
)

DEFAULT_MODEL = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"


class ModelSettings(BaseSettings):
    """The model, its training budget and the query strategy; the ML core gets them as its options
    (learning/options.py), built here and nowhere else."""

    model_config = FROM_ENVIRONMENT

    model_name: str = Field(DEFAULT_MODEL, description="Hugging Face hub id or a local model directory.")
    model_kind: Literal[MODEL_KINDS] = Field(
        "setfit", description="SetFit sentence transformer, or a token-level transformer classifier."
    )
    classifier_head: Literal[HEADS] = Field(
        "logistic",
        description="SetFit head: one logistic regression per code, a torch linear layer, or an "
        "ensemble of classifier chains of logistic regressions (correlated codes inform each other).",
    )
    chains: int = Field(5, ge=1, le=50, description="Classifier chains in the chain head's ensemble.")
    chain_order: Literal[CHAIN_ORDERS] = Field(
        "random", description="Chain head: a random code order per chain, or most frequent code first."
    )
    end_to_end: bool = Field(False, description="Train body and differentiable head together.")
    class_weight: Literal[CLASS_WEIGHTS] = Field(
        "balanced", description="Weight each code's positives by their rarity in the head (any head)."
    )
    tune_thresholds: bool = Field(
        True, description="Choose a decision threshold per code by cross-validation on the labeled data."
    )
    prediction_threshold: float = Field(
        0.5, gt=0.0, lt=1.0, description="Decision threshold for codes without a tuned threshold."
    )
    threshold_shrinkage: float = Field(
        10.0,
        ge=0.0,
        description="Pull each tuned threshold toward PREDICTION_THRESHOLD: the tuned one weighs as the "
        "code's positives (or negatives, if fewer) against this many segments at the default (0: none).",
    )
    features: Literal[FEATURES] = Field(
        "tfidf+embeddings",
        description="What the head sees: TF-IDF (word 1-2-grams fitted on the project's segments, no labels "
        "needed) beside the body's sentence embeddings, or the embeddings alone (docs/results.md, issue 38).",
    )
    tfidf_refit_growth: float = Field(
        0.1,
        gt=0.0,
        description="FEATURES=tfidf+embeddings: fit the TF-IDF again once the project's segments have "
        "grown by this share since it was fitted (0.1: by a tenth).",
    )
    setfit_num_iterations: int | None = Field(
        5, ge=1, description="Contrastive pairs per labeled segment and side (none: all pairs)."
    )
    setfit_max_steps: int = Field(
        40,
        ge=-1,
        description="Cap on contrastive training steps (-1: no cap; 0: no fine-tuning, the base body).",
    )
    setfit_batch_size: int = Field(16, ge=1, description="Pairs per contrastive training step.")
    transformer_epochs: int = Field(30, ge=1, description="Epochs for MODEL_KIND=transformer.")
    transformer_learning_rate: float = Field(
        1e-4, gt=0, le=1, description="AdamW's learning rate for MODEL_KIND=transformer (decays linearly)."
    )
    max_length: int = Field(128, ge=8, le=8192, description="Tokens per segment; longer text is cut.")
    seed: int = Field(42, ge=0, description="Random seed for training and the random strategy.")
    device: Literal[DEVICES] = Field("auto", description="Where torch runs.")
    activation_checkpointing: bool = Field(
        True,
        description="Recompute activations while fine-tuning a SetFit body: about 1 GB less memory "
        "for about a third more time.",
    )
    freeze_word_embeddings: bool = Field(
        True,
        description="Keep the word-embedding matrix fixed while fine-tuning a SetFit body: 96M of the "
        "default model's 118M parameters, 1.15 GB of gradients and optimizer state for rows a few "
        "contrastive steps barely move.",
    )
    freeze_lower_layers: float = Field(
        0.67,
        ge=0.0,
        lt=1.0,
        description="Share of a SetFit body's transformer layers, from the bottom, kept fixed (with the "
        "embeddings) while fine-tuning: they run once per segment in a round, and no gradient flows "
        "below the first trained layer (0.67: the upper 2 of 6 layers train, 4 of 12).",
    )
    freeze_lower_layers_from_steps: int = Field(
        20,
        ge=0,
        description="Contrastive steps from which a round freezes FREEZE_LOWER_LAYERS; shorter rounds "
        "train every layer, since they take no longer than a long round frozen and the first bodies "
        "gain most from it (0: every round freezes).",
    )
    encode_precision: Literal[PRECISIONS] = Field(
        "auto",
        description="Number format for encoding segments (training stays fp32): bf16 is about twice "
        "as fast on a CPU with native bfloat16 (AVX-512 BF16, AMX) and moves probabilities by under "
        "0.01; auto takes it there, fp32 elsewhere.",
    )
    query_strategy: Literal[STRATEGIES] = Field(
        "cviar", description="How the pool is ranked: " + ", ".join(STRATEGIES) + "."
    )
    evidence_tasks: int = Field(
        10,
        ge=0,
        description="With an evidence <Labels> tag in the form: the queue head's tasks whose predictions "
        "mark why each code is suggested, per round (and every /predict); 0: none.",
    )

    @field_validator("model_name", mode="before")
    @classmethod
    def _path_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, Path) else value

    @model_validator(mode="after")
    def _end_to_end_needs_differentiable_head(self) -> ModelSettings:
        if self.end_to_end and self.classifier_head != "differentiable":
            raise ValueError("END_TO_END=true needs CLASSIFIER_HEAD=differentiable")
        if self.setfit_max_steps == 0 and self.classifier_head == "differentiable":
            raise ValueError("SETFIT_MAX_STEPS=0 (the base body) needs CLASSIFIER_HEAD=logistic or chain")
        return self

    def encoder_options(self) -> EncoderOptions:
        """The body's model and how it encodes ("auto" stays for learning to resolve: no torch here)."""
        return EncoderOptions(self.model_name, self.max_length, self.device, self.encode_precision)

    def fine_tune_options(self) -> FineTuneOptions:
        """How a body is trained (SetFit's or the transformer's)."""
        return FineTuneOptions(
            seed=self.seed,
            num_iterations=self.setfit_num_iterations,
            max_steps=self.setfit_max_steps,
            batch_size=self.setfit_batch_size,
            differentiable_head=self.classifier_head == "differentiable",
            end_to_end=self.end_to_end,
            activation_checkpointing=self.activation_checkpointing,
            freeze_word_embeddings=self.freeze_word_embeddings,
            freeze_lower_layers=self.freeze_lower_layers,
            freeze_lower_layers_from_steps=self.freeze_lower_layers_from_steps,
            epochs=self.transformer_epochs,
            learning_rate=self.transformer_learning_rate,
        )

    def head_options(self) -> HeadOptions:
        """Any head but "chain" is refitted as per-code logistic regressions (the differentiable one
        trains with the body, FineTuneOptions)."""
        return HeadOptions(
            self.class_weight,
            self.prediction_threshold,
            self.tune_thresholds,
            self.seed,
            "chain" if self.classifier_head == "chain" else "logistic",
            self.chains,
            self.chain_order,
            self.features,
            threshold_shrinkage=self.threshold_shrinkage,
        )

    def strategy_options(self) -> StrategyOptions:
        """How the pool is ranked."""
        return StrategyOptions(self.query_strategy, self.seed)

    def model_options(self, kind: str | None = None) -> ModelOptions:
        """What a model factory of `kind` (MODEL_KIND unless given: a simulation's baseline) trains with."""
        kind = kind or self.model_kind
        return ModelOptions(kind, self.encoder_options(), self.fine_tune_options(), self.head_options())


class LoopSettings(BaseSettings):
    """When the loop trains, what it writes back, and whose labels it learns from."""

    model_config = FROM_ENVIRONMENT

    min_annotations_to_train: int = Field(
        10, ge=1, description="Annotated tasks needed before the first round."
    )
    fast_loop: bool = Field(
        True,
        description="After each annotation refit only the head on cached embeddings (SetFit, logistic "
        "head); fine-tune the body in the background.",
    )
    body_retrain_every: int = Field(
        25, ge=1, description="Fine-tune the body again after this many new training examples."
    )
    body_retrain_idle_seconds: int = Field(
        120, ge=10, description="... or when no annotation arrived for this long and there are new ones."
    )
    body_selection: Literal["held_out", "off"] = Field(
        "held_out",
        description="Keep a fine-tuned body only if a head on it beats one on the base body on held-out "
        "segments its fine-tuning never saw, beyond their noise (a bootstrap's one-sided 95 % lower "
        "bound of the gain above 0), across coders when several coded (from 32 labeled; off: always "
        "keep it).",
    )
    body_threads: int = Field(
        1, ge=1, description="CPU threads for fine-tuning the body (the rest stay with the fast loop)."
    )
    write_first: int = Field(
        1,
        ge=1,
        description="The least number of predictions written before a version goes live, one call each "
        "(Label Studio takes a tenth of a second per single create or update, seconds per import call). "
        "A version always writes first one place per coder and one more: Label Studio serves each coder "
        "the first task by score that no other coder holds locked.",
    )
    write_head: int = Field(
        100,
        ge=1,
        description="The queue head: predictions written one call each after the first ones go live "
        "(stopping when newer work waits); with WRITE_BY_IMPORT it grows to twice what coders took while "
        "the last version served (up to 1,000). The rest of the pool is not written to Label Studio: "
        "/predict serves it.",
    )
    write_by_import: bool = Field(
        False,
        description="Write a queue head's tasks that hold no prediction of ours in one import call per 100 "
        "instead of one call each (0.15 s for 100 on 11,656 tasks, against 8 s one by one). Only when "
        "Label Studio runs with fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short"
        "=true in its environment (the compose file sets both): otherwise each import recounts every "
        "task of the project and holds its database meanwhile (0.7 s at 11,656 tasks, about a minute "
        "at 100,000).",
    )
    worker_idle_seconds: int = Field(
        600, ge=0, description="How long a project's worker stays loaded, waiting for the next annotation."
    )
    train_coders: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Train only on annotations by these coders (comma-separated emails; empty: all).",
    )
    multi_coder_rule: Literal[tuple(CODER_RULES)] = Field(
        "majority",
        description="Several coders on one task: majority (ties: latest), latest, union, per_coder.",
    )
    min_positives_per_code: int = Field(
        5, ge=1, description="Codes with fewer labeled positives are flagged as too rare to learn."
    )
    none_choices: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_NONE_CHOICES),
        description="Choice values or aliases (any case, comma-separated) that mean none of the tag's "
        "codes: not learned as codes, checked when no code is predicted (off: every option is a code).",
    )
    cold_start: Literal["codebook", "none"] = Field(
        "none",
        description="Before the first round: codebook ranks the queue by the codes' hints (docs/results.md: "
        "not better on the study's data with the test model, so not the default); none keeps Label "
        "Studio's order.",
    )
    cold_start_check_similarity: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description="The codebook start pre-checks a code only when a segment's similarity to its hint "
        "reaches this (cosine).",
    )
    stopping_change_threshold: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="Stopping signal: at most this share of unlabeled tasks changed codes since last round.",
    )

    @field_validator("none_choices", mode="before")
    @classmethod
    def _none_choices(cls, value: object) -> object:
        if value is None:  # NONE_CHOICES=none: the environment's "none" is read as no value
            return ["none"]
        if isinstance(value, str) and value.strip().lower() == "off":
            return []
        return cls._comma_separated(value)

    @field_validator("body_selection", mode="before")
    @classmethod
    def _off(cls, value: object) -> object:
        return "off" if value is False else value  # BODY_SELECTION=off may arrive as a boolean

    @field_validator("cold_start", mode="before")
    @classmethod
    def _cold_start(cls, value: object) -> object:
        return "none" if value is None else value  # COLD_START=none: the environment's "none" is no value

    @field_validator("train_coders", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            return [str(item).strip().lower() for item in value if str(item).strip()]
        return value


GROUPS: dict[str, type[BaseSettings]] = {
    "model": ModelSettings,
    "loop": LoopSettings,
    "server": ServerSettings,
}
SECRET_FIELDS = ("label_studio_api_key", "basic_auth_pass", "mlflow_tracking_uri", "redis_url")


class Settings(BaseModel):
    """All settings, as their three groups."""

    model_config = ConfigDict(frozen=True)

    model: ModelSettings
    loop: LoopSettings
    server: ServerSettings

    @property
    def two_speed(self) -> bool:
        """Whether the fast loop applies: it refits a logistic head on a SetFit body's embeddings."""
        return (
            self.loop.fast_loop
            and self.model.model_kind == "setfit"
            and self.model.classifier_head in ("logistic", "chain")
        )

    def flat(self) -> dict[str, object]:
        """Every setting by its (lower-case) variable name, secrets included: for re-validation."""
        return {name: value for group in (self.model, self.loop, self.server) for name, value in group}

    def public(self) -> dict:
        """Every setting that is safe to log or record (MLflow params, `config`): secrets are left out."""
        shown = {}
        for group in (self.model, self.loop, self.server):
            shown |= {k: v for k, v in group.model_dump(mode="json").items() if k not in SECRET_FIELDS}
        url = self.server.label_studio_url
        return shown | {"label_studio_url": hide_credentials(url, url)}


def field_group(name: str) -> str | None:
    """The group that holds the setting `name` (lower case), or None."""
    return next((group for group, cls in GROUPS.items() if name in cls.model_fields), None)


def all_fields() -> list[str]:
    """Every setting's name (lower case), in group order."""
    return [name for cls in GROUPS.values() for name in cls.model_fields]
