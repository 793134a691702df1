"""Writing a model version's predictions to Label Studio, queue head first.

Label Studio needs minutes to take a whole pool's predictions (an 11,656-task project: about a
minute to import, more to delete an old version), but coders only need the head of the queue to
be fresh. So a version goes live in two steps:

1. the `first` most informative tasks are imported and the project is switched to the version
   (Uncertainty sampling serves those first; tasks without a current prediction come after);
2. the rest follows in chunks once no new annotation came for `rest_after` seconds; between
   chunks the writer stops when newer work is waiting (its own version will be written head
   first, so finishing this one would only delay it). Label Studio takes several seconds per
   import call on a large project whatever its size, so a chunk in flight when the next
   annotation arrives would delay that annotation's fresh queue by as much.

Only when a version is complete are the project's older versions deleted, so Label Studio never
holds more than one full version for long, and the request rate stays one call per chunk.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from backend.errors import BackendError
from backend.studio.client import PREDICTION_CHUNK, StudioAPI

log = logging.getLogger(__name__)
QUIET_POLL_SECONDS = 0.2
OUR_VERSION = re.compile(r"^v\d+-\d{14}$")


def _number(version: str) -> int:
    return int(version[1:].split("-", 1)[0])


def created_at(version: str) -> datetime:
    """When one of our versions was made (its name ends in the UTC time: v<n>-<YYYYmmddHHMMSS>)."""
    return datetime.strptime(version.rsplit("-", 1)[1], "%Y%m%d%H%M%S").replace(tzinfo=UTC)


class IncompleteImport(BackendError, RuntimeError):
    """Label Studio created fewer predictions than it was sent (it drops invalid ones silently)."""


def write_version(
    studio: StudioAPI,
    project: int,
    version: str,
    predictions: Sequence[dict],
    *,
    first: int,
    on_live: Callable[[], None],
    interrupted: Callable[[], bool] = lambda: False,
    rest_after: float = 0.0,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
    keep_old_for: float = 0.0,
) -> bool:
    """Import `predictions` (most informative first) and switch; returns whether all were written.

    `on_live` runs right after the switch (the caller records the new serving version), and
    `on_progress(written, total)` after each import call. Once complete, older versions replaced
    more than `keep_old_for` seconds ago are deleted. Raises IncompleteImport when Label Studio
    drops predictions of the queue head (nothing went live).
    """
    head, rest = list(predictions[:first]), list(predictions[first:])
    _import(studio, project, version, head)
    studio.serve_version(project, version)
    on_live()
    on_progress(len(head), len(predictions))
    log.info("project %s: %s is live with the %d most informative tasks", project, version, len(head))
    quiet_until = time.monotonic() + (rest_after if rest else 0.0)
    while time.monotonic() < quiet_until:
        if interrupted():
            log.info("project %s: newer work waits; the rest of %s is not written", project, version)
            return False
        time.sleep(QUIET_POLL_SECONDS)
    for start in range(0, len(rest), PREDICTION_CHUNK):
        if interrupted():
            log.info(
                "project %s: newer work waits; %s stops after %d of %d predictions",
                project,
                version,
                len(head) + start,
                len(predictions),
            )
            return False
        _import(studio, project, version, rest[start : start + PREDICTION_CHUNK])
        on_progress(len(head) + min(start + PREDICTION_CHUNK, len(rest)), len(predictions))
    delete_replaced_versions(studio, project, keep=version, after=keep_old_for)
    return True


def _import(studio: StudioAPI, project: int, version: str, chunk: list[dict]) -> None:
    if not chunk:
        return
    created = studio.import_predictions(project, chunk)
    if created != len(chunk):
        raise IncompleteImport(f"Label Studio created {created} of {len(chunk)} predictions of {version}")


def delete_replaced_versions(
    studio: StudioAPI, project: int, *, keep: str, after: float = 0.0, now: datetime | None = None
) -> list[str]:
    """Delete the predictions of the other versions this backend wrote once a newer version replaced
    them at least `after` seconds ago (failures only logged).

    A coder whose task was pre-annotated from a prediction submits an annotation that names it
    (`parent_prediction`); once that prediction is deleted, Label Studio refuses the submit (400,
    and its UI silently stays on the task). A version lives about as long as the next annotation
    takes, far less than a coder may keep a task open, so replaced versions stay for a while.
    """
    now = now or datetime.now(UTC)
    ours = sorted((v for v in studio.model_versions(project) if OUR_VERSION.match(v)), key=_number)
    replaced_at = {older: created_at(newer) for older, newer in itertools.pairwise(ours)}
    deleted = []
    for version in ours:
        if version == keep or (now - replaced_at.get(version, now)).total_seconds() < after:
            continue
        try:
            studio.delete_version(project, version)
            deleted.append(version)
        except Exception as exc:
            log.warning("project %s: predictions of old version %s stay for now: %s", project, version, exc)
    return deleted
