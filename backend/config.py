"""Typed settings from environment variables: one place, validated once at start.

Every knob a project lead may turn lives here, so a wrong value fails at start with a
message that names the variable and the allowed values, instead of deep inside a round.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MODEL = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"
QUERY_STRATEGIES = ("cviar", "entropy", "random", "lci", "adaptive")
CODER_RULES = ("majority", "latest", "union", "per_coder")


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the variable."""


class Settings(BaseSettings):
    """All settings; each field is read from the environment variable of the same name (upper case)."""

    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", frozen=True, env_ignore_empty=True, env_parse_none_str="none"
    )

    # --- the model --------------------------------------------------------------------------
    model_name: str = Field(DEFAULT_MODEL, description="Hugging Face hub id or a local model directory.")
    model_kind: Literal["setfit", "transformer"] = Field(
        "setfit", description="SetFit sentence transformer, or a token-level transformer classifier."
    )
    classifier_head: Literal["logistic", "differentiable"] = Field(
        "logistic", description="SetFit head: scikit-learn logistic regression, or a torch linear layer."
    )
    end_to_end: bool = Field(False, description="Train body and differentiable head together.")
    class_weight: Literal["balanced", "none"] = Field(
        "balanced", description="Weight each code's positives by their rarity in the logistic head."
    )
    tune_thresholds: bool = Field(
        True, description="Choose a decision threshold per code by cross-validation on the labeled data."
    )
    prediction_threshold: float = Field(
        0.5, gt=0.0, lt=1.0, description="Decision threshold for codes without a tuned threshold."
    )
    # --- training budget --------------------------------------------------------------------
    setfit_num_iterations: int | None = Field(
        5, ge=1, description="Contrastive pairs per labeled segment and side (none: all pairs)."
    )
    setfit_max_steps: int = Field(40, ge=-1, description="Cap on contrastive training steps (-1: no cap).")
    setfit_batch_size: int = Field(16, ge=1, description="Pairs per contrastive training step.")
    transformer_epochs: int = Field(10, ge=1, description="Epochs for MODEL_KIND=transformer.")
    max_length: int = Field(128, ge=8, le=8192, description="Tokens per segment; longer text is cut.")
    seed: int = Field(42, ge=0, description="Random seed for training and the random strategy.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where torch runs.")
    # --- active learning --------------------------------------------------------------------
    query_strategy: Literal[QUERY_STRATEGIES] = Field(  # type: ignore[valid-type]
        "cviar", description="How the pool is ranked: cviar, entropy, random, lci, adaptive."
    )
    # --- the two-speed loop ---------------------------------------------------------------------
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
    body_threads: int = Field(
        1, ge=1, description="CPU threads for fine-tuning the body (the rest stay with the fast loop)."
    )
    activation_checkpointing: bool = Field(
        True,
        description="Recompute activations while fine-tuning a SetFit body: about 1 GB less memory "
        "for about a third more time.",
    )
    write_first: int = Field(
        100, ge=1, description="Predictions written before a version goes live (the queue head)."
    )
    write_rest_after_seconds: float = Field(
        10.0, ge=0, description="Write the rest of a version once no annotation came for this long."
    )
    worker_idle_seconds: int = Field(
        600, ge=0, description="How long a project's worker stays loaded, waiting for the next annotation."
    )
    # --- coders and monitoring ---------------------------------------------------------------
    train_coders: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Train only on annotations by these coders (comma-separated emails; empty: all).",
    )
    multi_coder_rule: Literal[CODER_RULES] = Field(  # type: ignore[valid-type]
        "majority",
        description="Several coders on one task: majority (ties: latest), latest, union, per_coder.",
    )
    min_positives_per_code: int = Field(
        5, ge=1, description="Codes with fewer labeled positives are flagged as too rare to learn."
    )
    stopping_change_threshold: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="Stopping signal: at most this share of unlabeled tasks changed codes since last round.",
    )
    # --- storage ----------------------------------------------------------------------------
    model_dir: Path = Field(Path("./data/models"), description="Where model versions are stored.")
    keep_versions: int = Field(
        2,
        ge=2,
        description="Model versions kept per project (older are pruned; the serving one and a new one).",
    )
    # --- Label Studio and serving -------------------------------------------------------------
    label_studio_url: str = Field("http://localhost:8080", description="Where Label Studio is reached.")
    label_studio_api_key: SecretStr | None = Field(
        None, description="Legacy API token or personal access token of a Label Studio user."
    )
    basic_auth_user: str | None = Field(None, description="Protect every route with this user ...")
    basic_auth_pass: SecretStr | None = Field(None, description="... and this password.")
    mlflow_tracking_uri: SecretStr | None = Field(
        None, description="MLflow tracking server (default: a local store under MODEL_DIR)."
    )
    min_annotations_to_train: int = Field(
        10, ge=1, description="Annotated tasks needed before the first round."
    )
    port: int = Field(9090, ge=1, le=65535, description="HTTP port of `serve`.")
    workers: int = Field(1, ge=1, description="gunicorn worker processes.")
    threads: int = Field(4, ge=1, description="Threads per worker.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")

    @field_validator("model_name", mode="before")
    @classmethod
    def _path_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, Path) else value

    @field_validator("train_coders", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            return [str(item).strip().lower() for item in value if str(item).strip()]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _end_to_end_needs_differentiable_head(self) -> Settings:
        if self.end_to_end and self.classifier_head != "differentiable":
            raise ValueError("END_TO_END=true needs CLASSIFIER_HEAD=differentiable")
        return self

    @model_validator(mode="after")
    def _basic_auth_needs_both(self) -> Settings:
        if bool(self.basic_auth_user) != bool(self.basic_auth_pass):
            raise ValueError("set both BASIC_AUTH_USER and BASIC_AUTH_PASS, or neither")
        return self

    def public(self) -> dict:
        """Every setting that is safe to log or record: secrets are left out."""
        secret = {name for name, value in self if isinstance(value, SecretStr)}
        secret |= {"label_studio_api_key", "basic_auth_pass", "mlflow_tracking_uri"}
        shown = {k: v for k, v in self.model_dump(mode="json").items() if k not in secret}
        return shown | {"label_studio_url": hide_credentials(self.label_studio_url, self.label_studio_url)}

    @property
    def two_speed(self) -> bool:
        """Whether the fast loop applies: it refits a logistic head on a SetFit body's embeddings."""
        return self.fast_loop and self.model_kind == "setfit" and self.classifier_head == "logistic"

    def resolved_device(self) -> str:
        """The torch device to use: 'auto' picks CUDA when it is there."""
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"


def hide_credentials(text: str, url: str) -> str:
    """`text` (`url` itself, or a message naming it) with the user:password of `url` hidden, to be
    shown in logs, errors and MLflow."""
    userinfo = urlsplit(url).netloc.rpartition("@")[0]
    return text.replace(userinfo, "***") if userinfo else text


def _describe(error: dict, *, upper: bool = True) -> str:
    """One readable line per pydantic error, naming the environment variable (or the key)."""
    name = str(error["loc"][0]) if error["loc"] else "configuration"
    name = name.upper() if upper else name
    given = error.get("input")
    shown = "" if isinstance(given, dict) or given is None else f"={given!r}"
    message = error["msg"].removeprefix("Value error, ")
    return f"{name}{shown}: {message}"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (overrides win), or raise ConfigError naming each bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [_describe(error) for error in exc.errors()]
        raise ConfigError("Invalid configuration:\n  " + "\n  ".join(lines)) from None


def with_overrides(base: Settings, overrides: dict) -> Settings:
    """A validated copy of `base` with `overrides` (``model_copy(update=...)`` would not validate).

    The environment is not read again: `base` already holds it. A bad value raises ConfigError
    naming the key as given (lower case) and the value.
    """
    try:
        return Settings.model_validate({**dict(base), **overrides})
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(error, upper=False) for error in exc.errors())) from None
