"""Which prediction in Label Studio is ours for each task: ``MODEL_DIR/<project>/predictions.json``.

The backend keeps one prediction per task in Label Studio and updates it in place for each new
version (studio/writeback.py), so a coder's open task, whose annotation will name that prediction
as its `parent_prediction`, still submits. This map (task id → prediction id) is how it finds the
prediction to update. It is filled from Label Studio's answers to single creates and repaired
when Label Studio no longer has a prediction (writeback looks the task up again). This module is
its only reader and writer.

The fast lane (rounds, imported tasks) and the background lane (the codebook's queue) both write
it, so each save merges its changes into what is on disk under `.predictions-lock`; a save is
one per write step (a round's switch, its queue head), never one per prediction. The map grows with
the tasks ever written (up to the pool): a save reads the file again only when another lane wrote
it since this one last read or wrote it.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ValidationError

from backend.storage.atomic import write_atomically, write_identity
from backend.storage.layout import ProjectDir
from backend.storage.locks import file_lock

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1


class PredictionIdsFile(BaseModel):
    """The file's schema: `ids` maps a task id (as text: JSON keys) to its prediction's id."""

    schema_version: int = SCHEMA_VERSION
    ids: dict[int, int] = {}


class PredictionIds:
    """The task → prediction id map of one project, read once and saved by `save`."""

    def __init__(self, project_dir: ProjectDir):
        self.path = project_dir.prediction_ids
        self.lock = project_dir.prediction_ids_lock
        self._ids: dict[int, int] | None = None
        self._changed: dict[int, int | None] = {}
        self._seen: tuple[int, int, int] | None = (
            None  # the file as last read or written (inode, mtime, size)
        )

    def get(self, task: int) -> int | None:
        return self._known().get(task)

    def put(self, task: int, prediction: int) -> None:
        self._known()[task] = prediction
        self._changed[task] = prediction

    def drop(self, task: int) -> None:
        """Forget a task's prediction (Label Studio no longer has it)."""
        self._known().pop(task, None)
        self._changed[task] = None

    def save(self) -> None:
        """Merge the changes since the last save into the file (another lane may have saved since)."""
        if not self._changed:
            return
        with file_lock(self.lock):
            unchanged = self._ids is not None and self._seen is not None and self._identity() == self._seen
            ids = self._ids if unchanged else self._read()  # ours hold the changes already
            for task, prediction in self._changed.items():
                if prediction is None:
                    ids.pop(task, None)
                else:
                    ids[task] = prediction
            write_atomically(self.path, PredictionIdsFile.model_construct(ids=ids).model_dump_json())
            self._seen = self._identity()
        self._ids, self._changed = ids, {}

    def _known(self) -> dict[int, int]:
        if self._ids is None:
            self._ids = self._read()
        return self._ids

    def _identity(self) -> tuple[int, int, int] | None:
        return write_identity(self.path)

    def _read(self) -> dict[int, int]:
        """The map on disk; empty when there is none or it is damaged (writeback then looks tasks up)."""
        self._seen = self._identity()  # before the read: a write meanwhile makes the next save read again
        try:
            return PredictionIdsFile.model_validate_json(self.path.read_text()).ids
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, ValidationError) as exc:
            log.warning("%s cannot be read (%s): tasks are looked up in Label Studio again", self.path, exc)
            return {}
