"""Reading and overriding settings: every bad value is reported at once, by the variable's name."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from backend.config.settings import GROUPS, SECRET_FIELDS, Settings, field_group
from backend.errors import BackendError


class ConfigError(BackendError, ValueError):
    """A setting is missing or invalid; the message names the variable."""


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (overrides win), or raise ConfigError naming each bad variable."""
    routed = _route(overrides, upper=True)
    return _build(lambda group, cls: cls(**routed[group]), upper=True)


def with_overrides(base: Settings, overrides: Mapping[str, object] | None = None, **more: object) -> Settings:
    """A validated copy of `base` with `overrides` (the environment is not read again: `base` holds it).

    A bad value raises ConfigError naming the key as given (lower case) and the value.
    """
    routed = _route({**(overrides or {}), **more}, upper=False)
    groups = {"model": base.model, "loop": base.loop, "server": base.server}

    def validated(group: str, cls):
        if not routed[group]:
            return groups[group]
        return cls.model_validate({**dict(groups[group]), **routed[group]})

    return _build(validated, upper=False)


def _route(overrides: Mapping[str, object], *, upper: bool) -> dict[str, dict]:
    """Overrides by group; an unknown name is an error."""
    routed: dict[str, dict] = {group: {} for group in GROUPS}
    unknown = []
    for name, value in overrides.items():
        group = field_group(name.lower())
        if group is None:
            unknown.append(name.upper() if upper else name)
        else:
            routed[group][name.lower()] = value
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    return routed


def _build(make, *, upper: bool) -> Settings:
    built, lines = {}, []
    for group, cls in GROUPS.items():
        try:
            built[group] = make(group, cls)
        except ValidationError as exc:
            lines += [_describe(error, upper=upper) for error in exc.errors()]
    if lines:
        if upper:
            raise ConfigError("Invalid configuration:\n  " + "\n  ".join(lines))
        raise ConfigError("; ".join(lines))
    return Settings(**built)


def _describe(error: Mapping, *, upper: bool) -> str:
    """One readable line per pydantic error, naming the environment variable (or the key)."""
    name = str(error["loc"][0]) if error["loc"] else "configuration"
    name = name.upper() if upper else name
    given = error.get("input")
    secret = name.lower() in SECRET_FIELDS
    shown = "" if secret or isinstance(given, dict) or given is None else f"={given!r}"
    message = error["msg"].removeprefix("Value error, ")
    return f"{name}{shown}: {message}"
