"""Writing a model version's predictions to Label Studio: one prediction per task, updated in place.

Coders need only the head of the queue to be fresh, and every write to Label Studio holds its
database (SQLite: for everyone) while it runs: an import call holds it for seconds (7.6–10.5 s on
11,656 tasks, whether it carries 1 prediction or 100; a minute on 100,000), a single create or
PATCH for a tenth of a second (docs/benchmarks.md, "Label Studio's write paths"). So a version
writes only its queue head, one call per task, never in bulk, and never deletes a version:

- each task holds at most one prediction of ours (`TaskPredictions`). A new version PATCHes it
  (version, result, score) and keeps its id, so a coder's open task, whose annotation names that
  prediction as `parent_prediction`, still submits (Label Studio refuses the submit once it is
  deleted); a task without one gets one created. Its id is kept in a map on disk
  (storage/prediction_ids.py); a task the map lacks is looked up (a project written by the code
  before this: our newest prediction of it is adopted, our older ones deleted one by one); each
  write is logged with its time (storage/suggestions.py), so the suggestion a coder started from is
  known after the prediction was rewritten (learning/bias.py);
- tasks outside the new head keep their prediction under an older version name: not current, so
  Uncertainty sampling serves the head first and the labeling stream shows no stale
  pre-annotation. The rest of the pool is never written: `/predict` and the version's ranked pool
  (storage/ranked_pool.py) hold it, and the next round writes its own head;
- but Label Studio serves a coder the task locked to them (served earlier, not yet annotated) before
  any other, and shows its pre-annotation only if it is current: so the predictions come in the
  order they are written (worker/ranking.py `Queue.write_order`), the queue's first places, then
  the tasks earlier versions put there (worker/front.py), then the rest; each keeps its place's score.

A version is written in two steps, each a function that returns what the next takes:

1. `go_live`: the `first` predictions (the most informative) are written and the project is switched to
   the version (Uncertainty sampling serves those first; tasks without a current prediction come
   after only when no task has one); it returns the `Live` version;
2. `write_rest`: the rest of the queue head, up to `head` predictions, is written one call each,
   stopping as soon as newer work waits (its own version will be written head first), but not
   before `floor` are written: Label Studio answers a coder "no more tasks" when every task with a
   current prediction is locked by another coder (the load test's 544 failed `/next` of 1,832, with
   24 coders and versions going live with one task).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from backend.domain.versions import is_ours, made_order
from backend.errors import BackendError
from backend.studio.client import StudioAPI, StudioError

log = logging.getLogger(__name__)


class IncompleteImport(BackendError, RuntimeError):
    """Label Studio refused a prediction (its task is gone, or the result does not fit the form)."""

    http_status = 424  # Failed Dependency, as for StudioError: Label Studio did not do its part


class PredictionIdMap(Protocol):
    """Task id → the id of our prediction of it in Label Studio (storage/prediction_ids.py)."""

    def get(self, task: int) -> int | None: ...

    def put(self, task: int, prediction: int) -> None: ...

    def drop(self, task: int) -> None: ...

    def save(self) -> None: ...


class WriteLog(Protocol):
    """Each write of a prediction, kept to tell which suggestion a coder saw (storage/suggestions.py)."""

    def add(self, task: int, prediction: int, written: dict) -> None: ...

    def save(self) -> None: ...


class NoLog:
    """Writes kept nowhere (tests and tools that need no automation-bias report)."""

    def add(self, task: int, prediction: int, written: dict) -> None:
        pass

    def save(self) -> None:
        pass


@dataclass(frozen=True)
class TaskPredictions:
    """Our one prediction per task of a Label Studio project, written in place, each write logged."""

    studio: StudioAPI
    project: int
    ids: PredictionIdMap
    log: WriteLog = field(default_factory=NoLog)

    def save(self) -> None:
        """Save the id map and the log of writes (once per write step)."""
        self.ids.save()
        self.log.save()

    def write(self, prediction: dict) -> None:
        """PATCH the task's prediction to `prediction` (keeping its id), or create one if it has none.

        Raises IncompleteImport when Label Studio refuses it."""
        task = int(prediction["task"])
        try:
            known = self.ids.get(task)
            if known is None:
                known = self._adopt(task)
            if known is None or not self._update(known, prediction):
                known = self.studio.create_prediction(self.project, prediction)
                self.ids.put(task, known)
            self.log.add(task, known, prediction)
        except StudioError as exc:
            if exc.status not in (400, 404):
                raise
            raise IncompleteImport(
                f"Label Studio refused the prediction of {prediction.get('model_version')} for task {task}: "
                f"{exc}"
            ) from None

    def _update(self, known: int, prediction: dict) -> bool:
        """PATCH prediction `known`; False when Label Studio no longer has it (deleted meanwhile)."""
        try:
            self.studio.update_prediction(self.project, known, prediction)
            return True
        except StudioError as exc:
            if exc.status != 404:
                raise
            self.ids.drop(int(prediction["task"]))
            return False

    def _adopt(self, task: int) -> int | None:
        """Our prediction of a task the map does not know, if Label Studio holds one: the newest of
        ours is kept and the older ones are deleted, one call each (versions written before this
        map, or a save a crash lost). Others' predictions are left alone."""
        held = self.studio.task_predictions(self.project, task)
        ours = sorted(
            ((version, prediction) for prediction, version in held if is_ours(version)),
            key=lambda pair: made_order(pair[0]),
        )
        if not ours:
            return None
        *older, (_, newest) = ours
        for _, prediction in older:
            self.studio.delete_prediction(self.project, prediction)
        self.ids.put(task, newest)
        return newest


@dataclass(frozen=True)
class WritePlan:
    """How a version is written: `first` predictions before the switch, the queue `head` (up to
    that many, the first included) one by one after it, of which the first `floor` even when newer
    work waits.

    Label Studio serves only tasks with a current prediction while any task has one, and answers a
    coder "no more tasks" when all of those are locked by other coders: a version must go live with
    more current tasks than its coders hold, and add more before the next one takes its place."""

    first: int = 0
    head: int = 0
    floor: int = 0


@dataclass(frozen=True)
class Live:
    """A version Label Studio serves, with its predictions (in the order they are written: the queue's
    first places first) and how many of them are written."""

    project: int
    version: str
    predictions: Sequence[dict]
    written: int

    @property
    def total(self) -> int:
        return len(self.predictions)


def go_live(target: TaskPredictions, version: str, predictions: Sequence[dict], first: int) -> Live:
    """Write the `first` predictions one call each and switch the project to `version`.

    Raises IncompleteImport when Label Studio refuses one of them: nothing went live then."""
    try:
        for prediction in predictions[:first]:
            target.write(prediction)
    finally:
        target.save()
    target.studio.serve_version(target.project, version)
    written = min(first, len(predictions))
    log.info("project %s: %s is live with the %d most informative tasks", target.project, version, written)
    return Live(target.project, version, predictions, written)


def already_live(project: int, version: str, predictions: Sequence[dict]) -> Live:
    """More predictions of the version Label Studio serves already (tasks imported since its round)."""
    return Live(project, version, predictions, 0)


def write_rest(
    target: TaskPredictions,
    live: Live,
    plan: WritePlan,
    interrupted: Callable[[], bool] = lambda: False,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> bool:
    """Write the rest of `live`'s queue head; returns whether all of it was written.

    `interrupted()` is asked before each call once `plan.floor` are written (newer work waits:
    stop), `on_progress(written, head)` told after each."""
    head = min(max(plan.head, plan.first), live.total)
    on_progress(min(live.written, head), head)
    try:
        for written in range(live.written, head):
            if written >= plan.floor and interrupted():
                log.info(
                    "project %s: newer work waits; %s stops after %d of its %d head predictions",
                    live.project,
                    live.version,
                    written,
                    head,
                )
                return False
            target.write(live.predictions[written])
            on_progress(written + 1, head)
    finally:
        target.save()
    return True
