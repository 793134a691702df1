"""The names of our model versions, in one place: `v<n>-<YYYYmmddHHMMSS>`, `v0-codebook-<time>`, and
the one name Label Studio serves, `LIVE`.

A round's version is numbered (one more than the project's newest on disk: storage/versions.py)
and ends in its UTC creation time; the cold start's queue (worker/cold_start.py) is version 0 of
the codebook, ordered by its time alone. In Label Studio, a task in the queue head holds its
prediction under `LIVE`, the project's `model_version` for good, whichever version wrote it: a new
version then never empties the set of tasks Label Studio serves (studio/writeback.py); a task that
left the head holds it under the name of the version that wrote it. Label Studio keeps these names
beside the versions others wrote, so studio/writeback.py recognises ours by their whole shape.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

TIME_FORMAT = "%Y%m%d%H%M%S"  # UTC, to the second
NUMBERED = re.compile(r"^v(\d+)-")  # what a version directory's name starts with
OURS = re.compile(r"^v\d+-(codebook-)?\d{14}$")
# What the Data Manager shows for a task in the current queue: the suggestion of the newest version
# that wrote it; the internal version is in the backend (storage/prediction_ids.py, /metrics).
LIVE = "active-learning-queue"
# The id on record for a prediction of ours made by an import call, which answers a count and no
# ids (studio/task_predictions.py): the task's first prediction of ours; a rewrite looks its id up.
IMPORTED = 0


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
    return name == LIVE or OURS.match(name) is not None


def version_number(name: str) -> int:
    """The number a version name starts with; 0 for any other name."""
    match = NUMBERED.match(name)
    return int(match.group(1)) if match else 0


def created_at(name: str) -> datetime:
    """When one of our versions was made (its name ends in the UTC time)."""
    return datetime.strptime(name.rsplit("-", 1)[1], TIME_FORMAT).replace(tzinfo=UTC)


def made_order(name: str) -> tuple[bool, int, str]:
    """Sorts our versions in the order they were made (codebook versions are all v0: by their time);
    `LIVE` last, as the name a task's newest prediction holds."""
    if name == LIVE:
        return True, 0, ""
    return False, version_number(name), name.rsplit("-", 1)[1]
