"""Our one prediction per task of a Label Studio project, written in place (studio/writeback.py
decides which tasks and when).

Each task holds at most one prediction of ours. A new version PATCHes it (name, result, score) and
keeps its id, so a coder's open task, whose annotation names that prediction as
`parent_prediction`, still submits (Label Studio refuses the submit once it is deleted); a task
without one gets one created, or, with WRITE_BY_IMPORT, imported with others in one call. Its id is
kept in a map on disk (storage/prediction_ids.py; an imported prediction's id, which the import does
not answer, is `IMPORTED` there until a rewrite looks it up); the tasks the map lacks are looked up
before their writes, 100 a read (`look_up`; a project written by the code before this: our newest
prediction of each task is adopted, our older ones deleted one by one). Each write is logged with
its time and internal version (storage/suggestions.py), so the suggestion a coder started from is
known after the prediction was rewritten (learning/bias.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from backend.domain.versions import IMPORTED, LIVE, is_ours, made_order, version_number
from backend.errors import BackendError
from backend.studio.client import StudioAPI, StudioError

log = logging.getLogger(__name__)
# An import call slower than this suggests Label Studio recounts every task of the project on each
# import (the flag is off): worth a warning to the admin, since it holds SQLite's lock meanwhile.
SLOW_IMPORT_SECONDS = 2.0


class IncompleteImport(BackendError, RuntimeError):
    """Label Studio refused a prediction (its task is gone, or the result does not fit the form)."""

    http_status = 424  # Failed Dependency, as for StudioError: Label Studio did not do its part


class PredictionIdMap(Protocol):
    """Task id → the id of our prediction of it in Label Studio, and the live tasks → the version
    that wrote each (storage/prediction_ids.py)."""

    def get(self, task: int) -> int | None: ...

    def put(self, task: int, prediction: int) -> None: ...

    def drop(self, task: int) -> None: ...

    def live(self) -> dict[int, str]: ...

    def set_live(self, task: int, version: str | None) -> None: ...

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


def queue_score(version: str, place: float) -> float:
    """The score Label Studio serves a prediction by: its place in its version's queue (0 the most
    informative, 1 the least) within the band [1/(n + 2), 1/(n + 1)] of version number n (the
    codebook's queue: 0). A newer version's band lies below every older one's, so its head is served
    first, whatever an older head left live."""
    number = version_number(version)
    return (1 + min(max(float(place), 0.0), 1.0) / (number + 1)) / (number + 2)


def served_form(prediction: dict) -> dict:
    """A version's prediction as Label Studio holds it: under the served name, its score in the
    version's band."""
    version = str(prediction["model_version"])
    return {**prediction, "model_version": LIVE, "score": queue_score(version, prediction["score"])}


@dataclass(frozen=True)
class TaskPredictions:
    """Our one prediction per task of a Label Studio project, written in place, each write logged;
    with `by_import`, the tasks that hold none of ours get theirs in import calls (WRITE_BY_IMPORT)."""

    studio: StudioAPI
    project: int
    ids: PredictionIdMap
    log: WriteLog = field(default_factory=NoLog)
    by_import: bool = False

    def save(self) -> None:
        """Save the id map and the log of writes (once per write step)."""
        self.ids.save()
        self.log.save()

    def write(self, prediction: dict) -> None:
        """PATCH the task's prediction to `prediction` under the served name `LIVE` (keeping its id),
        or create one if it has none; the version it names (`model_version`) is recorded as the
        writer of a live task and in the log.

        Raises IncompleteImport when Label Studio refuses it."""
        task, version = int(prediction["task"]), str(prediction["model_version"])
        served = served_form(prediction)
        try:
            if self.ids.get(task) == IMPORTED:  # not looked up ahead (look_up): one read now
                self.look_up([task])
            known = self.ids.get(task)
            if known is None or not self._update(known, served):
                known = self.studio.create_prediction(self.project, served)
                self.ids.put(task, known)
            self.ids.set_live(task, version)
            self.log.add(task, known, prediction)
        except StudioError as exc:
            if exc.status not in (400, 404):
                raise
            raise IncompleteImport(
                f"Label Studio refused the prediction of {prediction.get('model_version')} for task {task}: "
                f"{exc}"
            ) from None

    def demote(self, task: int, version: str) -> None:
        """Rename a live task's prediction to `version` (the one that wrote it): no longer served.
        Its result, score and id stay, so a coder who holds it open still submits."""
        try:
            self.look_up([task])
            known = self.ids.get(task)
            if known is not None:
                self.studio.rename_prediction(self.project, known, version)
        except StudioError as exc:
            if exc.status != 404:
                raise
            self.ids.drop(task)  # deleted meanwhile: nothing left to serve
        self.ids.set_live(task, None)

    def importable(self, prediction: dict) -> bool:
        """Whether the prediction goes in an import call: imports are on and its task holds no
        prediction of ours, as far as the map knows (one lost from a damaged map gets a second
        prediction, and the next rewrite's look-up deletes the older: at most two per task)."""
        return self.by_import and self.ids.get(int(prediction["task"])) is None

    def import_new(self, predictions: Sequence[dict]) -> None:
        """Import predictions of tasks that hold none of ours, in one call. Label Studio answers a
        count, not ids: each is recorded as `IMPORTED` until a rewrite looks it up. The record is
        saved before the call: a worker killed during it leaves the tasks to be looked up when next
        written, never imported twice.

        Raises IncompleteImport when Label Studio refuses or drops any (a task gone, a result that
        does not fit the form): the next write of each looks it up."""
        for prediction in predictions:
            self.ids.put(int(prediction["task"]), IMPORTED)
        self.ids.save()
        started = time.monotonic()
        try:
            created = self.studio.import_predictions(self.project, [served_form(p) for p in predictions])
        except StudioError as exc:
            if exc.status not in (400, 404):
                raise
            raise IncompleteImport(
                f"Label Studio refused an import of {len(predictions)} predictions: {exc}"
            ) from None
        seconds = time.monotonic() - started
        if seconds > SLOW_IMPORT_SECONDS:
            log.warning(
                "project %s: Label Studio took %.1f s to import %d predictions; without "
                "fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short=true in its "
                "environment it recounts every task on each import, holding its database: set it, or "
                "WRITE_BY_IMPORT=false",
                self.project,
                seconds,
                len(predictions),
            )
        for prediction in predictions:
            task = int(prediction["task"])
            self.ids.set_live(task, str(prediction["model_version"]))
            self.log.add(task, IMPORTED, prediction)
        if created != len(predictions):
            raise IncompleteImport(
                f"Label Studio took {created} of {len(predictions)} imported predictions "
                "(a task gone, or a result that does not fit the form)"
            )

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

    def look_up(self, tasks: Iterable[int]) -> None:
        """Find our predictions of the `tasks` whose id the map lacks (imported, or written by the code
        before the map, or lost with a save a crash lost), one read per 100 tasks: the newest of ours
        is adopted and the older ones are deleted, one call each; a task that holds none of ours
        leaves the map (its next write creates one). Others' predictions are left alone.

        `write` takes a task the map does not know for one that holds none of ours: the tasks of a
        head are looked up ahead of their writes (writeback.write_steps)."""
        unknown = sorted({int(task) for task in tasks if not self.ids.get(int(task))})
        if not unknown:
            return
        for task, held in self.studio.predictions_of(self.project, unknown).items():
            self._adopt(task, held)

    def _adopt(self, task: int, held: list[tuple[int, str]]) -> None:
        """Keep the newest of our predictions among those `task` holds, delete the older ones."""
        ours = sorted(
            ((version, prediction) for prediction, version in held if is_ours(version)),
            key=lambda pair: made_order(pair[0]),
        )
        if not ours:
            if self.ids.get(task) is not None:  # an import Label Studio dropped
                self.ids.drop(task)
            return
        *older, (_, newest) = ours
        for _, prediction in older:
            self.studio.delete_prediction(self.project, prediction)
        self.ids.put(task, newest)
