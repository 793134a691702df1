"""The server's settings: where things live and how to reach them (storage, Label Studio, MLflow,
Redis, HTTP). One of the three groups of config/settings.py, which also reads it from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER = "change-me"  # the placeholder secrets of .env.example contain it
FROM_ENVIRONMENT = SettingsConfigDict(
    case_sensitive=False, extra="forbid", frozen=True, env_ignore_empty=True, env_parse_none_str="none"
)


class ServerSettings(BaseSettings):
    """Storage, the services the backend talks to, and its own HTTP server."""

    model_config = FROM_ENVIRONMENT

    model_dir: Path = Field(Path("./data/models"), description="Where model versions are stored.")
    keep_versions: int = Field(
        2,
        ge=2,
        description="Model versions kept per project (older are pruned; the serving one and a new one).",
    )
    label_studio_url: str = Field("http://localhost:8080", description="Where Label Studio is reached.")
    label_studio_api_key: SecretStr | None = Field(
        None, description="Legacy API token or personal access token of a Label Studio user."
    )
    basic_auth_user: str | None = Field(None, description="Protect every route with this user ...")
    basic_auth_pass: SecretStr | None = Field(None, description="... and this password.")
    mlflow_tracking_uri: SecretStr | None = Field(
        None, description="MLflow tracking server (default: a local store under MODEL_DIR)."
    )
    allow_unauthenticated: bool = Field(
        False, description="Serve without basic auth (only where nobody else can reach the backend)."
    )
    backend_url: str | None = Field(
        None,
        description="How Label Studio reaches this backend (e.g. http://backend:9090): only the project "
        "webhook to <BACKEND_URL>/webhook gets our basic auth.",
    )
    mlflow_ui_url: str | None = Field(
        None,
        description="Where a browser reaches the MLflow UI, for /status's links to runs (default: "
        "MLFLOW_TRACKING_URI when it is an http(s) server, without its credentials).",
    )
    coder_identities: Literal["pseudonym", "email"] = Field(
        "pseudonym",
        description="How coders are named in /metrics, MLflow and state: stable pseudonyms, or emails.",
    )
    max_worker_processes: int = Field(
        4, ge=1, description="Worker processes at once on this host; more requests wait their turn."
    )
    redis_url: SecretStr | None = Field(
        None,
        description="Redis (redis://host:6379/0): rounds run in `coding-backend worker` processes on any "
        "host that shares MODEL_DIR (README: When one machine is not enough); unset: on this host.",
    )
    redis_lock_seconds: int = Field(
        30,
        ge=5,
        le=3600,
        description="With REDIS_URL: a lock is renewed while its holder lives and expires this long after "
        "it died (a killed worker's lane is freed).",
    )
    max_request_bytes: int = Field(10_000_000, ge=1000, description="Largest request body accepted.")
    inbox_max_bytes_per_project: int = Field(
        5_000_000,
        ge=100_000,
        description="Disk the annotations webhooks brought may take per project until its next round (each "
        "in whole 4 KiB blocks); beyond it they are dropped and the round reads every annotation.",
    )
    inbox_max_bytes: int = Field(
        50_000_000,
        ge=100_000,
        description="The same across all projects: the most the webhooks' annotations take of MODEL_DIR.",
    )
    max_predict_tasks: int = Field(1000, ge=1, description="Most tasks accepted in one /predict call.")
    max_loaded_models: int = Field(4, ge=1, description="Model versions kept loaded per server worker.")
    port: int = Field(9090, ge=1, le=65535, description="HTTP port of `serve`.")
    workers: int = Field(1, ge=1, description="gunicorn worker processes.")
    threads: int = Field(4, ge=1, description="Threads per worker: each answers one whole request at a time.")
    client_timeout: int = Field(
        30,
        ge=1,
        description="Seconds a connection may stay silent (half-sent request or idle) before it is closed.",
    )
    max_connections: int = Field(
        1000,
        ge=10,
        description="Open connections per worker; more wait in the listen queue (slow ones hold no thread).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    access_log: bool = Field(False, description="Log every request with its status and duration.")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _basic_auth_needs_both(self) -> ServerSettings:
        if bool(self.basic_auth_user) != bool(self.basic_auth_pass):
            raise ValueError("set both BASIC_AUTH_USER and BASIC_AUTH_PASS, or neither")
        return self

    @model_validator(mode="after")
    def _inbox_caps_in_order(self) -> ServerSettings:
        if self.inbox_max_bytes < self.inbox_max_bytes_per_project:
            raise ValueError("INBOX_MAX_BYTES (all projects) is below INBOX_MAX_BYTES_PER_PROJECT")
        return self

    @field_validator("basic_auth_pass", "label_studio_api_key")
    @classmethod
    def _not_a_placeholder(cls, value: SecretStr | None, info) -> SecretStr | None:
        if value is not None and PLACEHOLDER in value.get_secret_value().lower():
            raise ValueError(
                f"still the placeholder of .env.example: choose a real {info.field_name.upper()}"
            )
        return value

    @field_validator("backend_url", "mlflow_ui_url")
    @classmethod
    def _an_http_url(cls, value: str | None, info) -> str | None:
        if value is not None and not (urlsplit(value).scheme in ("http", "https") and urlsplit(value).netloc):
            example = "http://backend:9090" if info.field_name == "backend_url" else "http://localhost:5000"
            raise ValueError(f"expected an http(s) URL, like {example}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _a_redis_url_with_a_password(cls, value: SecretStr | None) -> SecretStr | None:
        """Whoever can write to Redis runs code in the workers (RQ's jobs are pickled): a password is
        required unless Redis is on this machine only."""
        if value is None:
            return value
        url = urlsplit(value.get_secret_value())
        if url.scheme not in ("redis", "rediss", "unix"):
            raise ValueError("expected a Redis URL, like redis://:password@redis:6379/0 (rediss:// with TLS)")
        if (
            url.scheme != "unix"
            and not url.password
            and url.hostname not in ("localhost", "127.0.0.1", "::1")
        ):
            raise ValueError(
                "no password: whoever reaches this Redis could run code in the workers; set requirepass "
                "and give it in the URL, like redis://:password@redis:6379/0"
            )
        return value

    def mlflow_ui(self) -> str | None:
        """The MLflow UI's address for links, never with credentials (None: no UI to link to)."""
        if self.mlflow_ui_url:
            return self.mlflow_ui_url.rstrip("/")
        uri = self.mlflow_tracking_uri.get_secret_value() if self.mlflow_tracking_uri else ""
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        return f"{parts.scheme}://{host}{parts.path}".rstrip("/")

    @property
    def auth_required(self) -> bool:
        """Whether requests must carry basic auth (refused to serve without it unless waived)."""
        return bool(self.basic_auth_user)

    def api_key(self) -> str:
        """The Label Studio API key ('' when unset: the client then says what is missing)."""
        return self.label_studio_api_key.get_secret_value() if self.label_studio_api_key else ""
