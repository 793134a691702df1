"""What every job of one project shares, built once per worker (worker/wiring.py)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from backend.config import LoopSettings
from backend.queue.interface import WorkQueue
from backend.queue.work import Lane, WorkKind
from backend.storage.listing import PoolListing
from backend.storage.prediction_ids import PredictionIds
from backend.storage.state import StateStore
from backend.storage.suggestions import SuggestionLog
from backend.storage.validation import ValidationStore
from backend.storage.versions import ModelStore
from backend.studio.client import StudioAPI
from backend.studio.task_predictions import TaskPredictions
from backend.studio.writeback import WritePlan
from backend.worker.pool import Pool
from backend.worker.progress import ProgressReporter


@dataclass(frozen=True)
class ProjectContext:
    """One project: its id (`project` as on disk and in the queue, `project_id` for Label Studio),
    the Label Studio client, its state, its versions, the queue and the loop's settings; with the
    project's unlabeled pool and progress reporter, one of each per worker."""

    project: str
    studio: StudioAPI
    states: StateStore
    store: ModelStore
    queue: WorkQueue
    loop: LoopSettings

    @property
    def project_id(self) -> int:
        return int(self.project)

    @cached_property
    def pool(self) -> Pool:
        return Pool(self.project_id, self.studio, PoolListing(self.store.layout.project(self.project)))

    @cached_property
    def validation(self) -> ValidationStore:
        """The project's blind validation sample (held out of training until released)."""
        return ValidationStore(self.store.layout.project(self.project))

    @cached_property
    def progress(self) -> ProgressReporter:
        return ProgressReporter(self.project, self.states)

    @cached_property
    def task_predictions(self) -> TaskPredictions:
        """Our one prediction per task in Label Studio, the map of their ids on disk and the log of
        their writes."""
        directory = self.store.layout.project(self.project)
        return TaskPredictions(
            self.studio,
            self.project_id,
            PredictionIds(directory),
            SuggestionLog(directory),
            by_import=self.loop.write_by_import,
        )

    @property
    def write_plan(self) -> WritePlan:
        """How the loop writes a version (WRITE_FIRST, WRITE_HEAD)."""
        return WritePlan(self.loop.write_first, self.loop.write_head)

    def round_waits(self) -> bool:
        """Whether annotations asked for a newer round (then a round's leftover work can go: the
        next version is on its way)."""
        return WorkKind.TRAIN in self.queue.pending(self.project, Lane.FAST)
