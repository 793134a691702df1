"""Writing a model version's predictions to Label Studio, queue head first.

Label Studio takes seconds for any import call on a large project (7.6–10.5 s on 11,656 tasks,
whether it carries 1 prediction or 100) but a tenth of a second for one prediction created on its
own (docs/benchmarks.md, "Label Studio's write paths"). Coders only need the head of the queue to
be fresh, so a version is written in two steps, each a function that returns what the next takes:

1. `go_live`: the `first` most informative predictions are created one by one and the project is
   switched to the version (Uncertainty sampling serves those first; tasks without a current
   prediction come after); it returns the `Live` version;
2. `write_rest`: the rest of the queue's front, up to `front` predictions, is created one by one,
   stopping as soon as newer work waits (its own version will be written front first); then the
   rest of the pool is imported in chunks once no new annotation came for `rest_after` seconds;
   between chunks the writer stops when newer work is waiting, since a chunk in flight when the
   next annotation arrives delays that annotation's fresh queue by seconds.

Only when a version is complete are the project's older versions deleted, so Label Studio never
holds more than one full version for long, and the request rate stays one call per chunk.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from backend.domain.versions import created_at, is_ours, made_order
from backend.errors import BackendError
from backend.studio.client import PREDICTION_CHUNK, StudioAPI, StudioError

log = logging.getLogger(__name__)
QUIET_POLL_SECONDS = 0.2


class IncompleteImport(BackendError, RuntimeError):
    """Label Studio created fewer predictions than it was sent (an import drops invalid ones silently;
    a single create refuses one whose task is gone)."""

    http_status = 424  # Failed Dependency, as for StudioError: Label Studio did not do its part


@dataclass(frozen=True)
class WritePlan:
    """How a version is written: `first` predictions before the switch, the queue's `front` (up to
    that many, the first included) one by one after it, the rest in bulk once coders paused for
    `rest_after` seconds; replaced versions are deleted `keep_old_for` seconds after their
    replacement."""

    first: int = 0
    front: int = 0
    rest_after: float = 0.0
    keep_old_for: float = 0.0


@dataclass(frozen=True)
class Live:
    """A version Label Studio serves, with its predictions (most informative first) and how many of
    them are written."""

    project: int
    version: str
    predictions: Sequence[dict]
    written: int

    @property
    def total(self) -> int:
        return len(self.predictions)


def go_live(studio: StudioAPI, project: int, version: str, predictions: Sequence[dict], first: int) -> Live:
    """Create the `first` predictions one call each and switch the project to `version`.

    Raises IncompleteImport when Label Studio refuses one of them: nothing went live then."""
    _create_each(studio, project, version, predictions[:first])
    studio.serve_version(project, version)
    written = min(first, len(predictions))
    log.info("project %s: %s is live with the %d most informative tasks", project, version, written)
    return Live(project, version, predictions, written)


def already_live(project: int, version: str, predictions: Sequence[dict]) -> Live:
    """More predictions of the version Label Studio serves already (tasks imported since its round)."""
    return Live(project, version, predictions, 0)


def write_rest(
    studio: StudioAPI,
    live: Live,
    plan: WritePlan,
    interrupted: Callable[[], bool] = lambda: False,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> bool:
    """Write what `live` has not written yet; returns whether all of it was written.

    `interrupted()` is asked before each call (newer work waits: stop), `on_progress(written,
    total)` told after each. Once complete, older versions replaced more than `plan.keep_old_for`
    seconds ago are deleted."""
    project, version, predictions, total = live.project, live.version, live.predictions, live.total
    on_progress(live.written, total)
    front = min(max(plan.front, plan.first), total)
    for written in range(live.written, front):
        if interrupted():
            return _stopped(project, version, written, total)
        _create_each(studio, project, version, predictions[written : written + 1])
        on_progress(written + 1, total)
    rest_from = max(front, live.written)
    quiet_until = time.monotonic() + (plan.rest_after if rest_from < total else 0.0)
    while time.monotonic() < quiet_until:
        if interrupted():
            return _stopped(project, version, rest_from, total)
        time.sleep(QUIET_POLL_SECONDS)
    for start in range(rest_from, total, PREDICTION_CHUNK):
        if interrupted():
            return _stopped(project, version, start, total)
        _import(studio, project, version, list(predictions[start : start + PREDICTION_CHUNK]))
        on_progress(min(start + PREDICTION_CHUNK, total), total)
    delete_replaced_versions(studio, project, keep=version, after=plan.keep_old_for)
    return True


def _stopped(project: int, version: str, written: int, total: int) -> bool:
    log.info(
        "project %s: newer work waits; %s stops after %d of %d predictions", project, version, written, total
    )
    return False


def _create_each(studio: StudioAPI, project: int, version: str, predictions: Sequence[dict]) -> None:
    """Create predictions one call each; a refusal (the task is gone) is an incomplete write."""
    for prediction in predictions:
        try:
            studio.create_prediction(project, prediction)
        except StudioError as exc:
            if exc.status not in (400, 404):
                raise
            raise IncompleteImport(
                f"Label Studio refused the prediction of {version} for task {prediction.get('task')}: {exc}"
            ) from None


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
    ours = sorted(filter(is_ours, studio.model_versions(project)), key=made_order)
    if keep in ours:  # never one made after `keep` (a round that went live meanwhile)
        ours = ours[: ours.index(keep) + 1]
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
