"""The names of our model versions, in one place: `v<n>-<YYYYmmddHHMMSS>`, and `v0-codebook-<time>`.

A round's version is numbered (one more than the project's newest on disk: storage/versions.py)
and ends in its UTC creation time; the cold start's queue (worker/cold_start.py) is version 0 of
the codebook, ordered by its time alone. Label Studio keeps these names beside the versions others
wrote, so studio/writeback.py recognises ours by their whole shape.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

TIME_FORMAT = "%Y%m%d%H%M%S"  # UTC, to the second
NUMBERED = re.compile(r"^v(\d+)-")  # what a version directory's name starts with
OURS = re.compile(r"^v\d+-(codebook-)?\d{14}$")


def version_name(number: int, created: datetime) -> str:
    """A round's version: its number and when it was made."""
    return f"v{number}-{created:{TIME_FORMAT}}"


def codebook_version_name(created: datetime) -> str:
    """The cold start's version (every codebook queue is v0; the first round is v1)."""
    return f"v0-codebook-{created:{TIME_FORMAT}}"


def is_numbered(name: str) -> bool:
    """Whether a name starts like a version's (a directory that holds, or held, one)."""
    return NUMBERED.match(name) is not None


def is_ours(name: str) -> bool:
    """Whether a version name in Label Studio is one this backend made."""
    return OURS.match(name) is not None


def version_number(name: str) -> int:
    """The number a version name starts with; 0 for any other name."""
    match = NUMBERED.match(name)
    return int(match.group(1)) if match else 0


def created_at(name: str) -> datetime:
    """When one of our versions was made (its name ends in the UTC time)."""
    return datetime.strptime(name.rsplit("-", 1)[1], TIME_FORMAT).replace(tzinfo=UTC)


def made_order(name: str) -> tuple[int, str]:
    """Sorts our versions in the order they were made (codebook versions are all v0: by their time)."""
    return version_number(name), name.rsplit("-", 1)[1]
