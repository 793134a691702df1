"""What the commands share: the usage error and the parsing of comma-separated options."""

from __future__ import annotations

from backend.errors import BackendError


class UsageError(BackendError):
    """Options that do not fit together, or name something that is not there."""


def comma_list(text: str | None) -> list[str] | None:
    """`a,b` → ['a', 'b']; None stays None."""
    return None if text is None else [item.strip() for item in text.split(",") if item.strip()]


def seed_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(seed) for seed in comma_list(text) or [])
    except ValueError:
        raise UsageError(
            f"--seeds {text!r}: expected whole numbers separated by commas, like 1,2,3"
        ) from None
