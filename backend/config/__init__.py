"""Settings (three groups read from the environment), their loading, logging and redaction."""

from backend.config.loading import ConfigError, load_settings, with_overrides
from backend.config.settings import (
    DEFAULT_MODEL,
    LoopSettings,
    ModelSettings,
    ServerSettings,
    Settings,
    all_fields,
)

__all__ = [
    "DEFAULT_MODEL",
    "ConfigError",
    "LoopSettings",
    "ModelSettings",
    "ServerSettings",
    "Settings",
    "all_fields",
    "load_settings",
    "with_overrides",
]
