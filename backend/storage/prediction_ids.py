"""Which prediction in Label Studio is ours for each task, and which tasks are live:
``MODEL_DIR/<project>/predictions.json``.

The backend keeps one prediction per task in Label Studio and updates it in place for each new
version (studio/writeback.py), so a coder's open task, whose annotation will name that prediction
as its `parent_prediction`, still submits. This map (task id → prediction id) is how it finds the
prediction to update. It is filled from Label Studio's answers to single creates and repaired
when Label Studio no longer has a prediction (writeback looks the task up again). Beside it, the
live set: the tasks whose prediction holds the name Label Studio serves (domain/versions.py
`LIVE`), each with the internal version that wrote it, so a round knows which tasks left the queue
head and what to rename them to, without listing Label Studio. This module is its only reader and
writer.

The fast lane (rounds, imported tasks) and the background lane (the codebook's queue) both write
it, so each save merges its changes into what is on disk under `.predictions-lock`; a save is
one per write step (a round's switch, its queue head), never one per prediction. The map grows with
the tasks ever written (up to the pool): a save reads the file again only when another lane wrote
it since this one last read or wrote it.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ValidationError

from backend.storage.atomic import write_atomically, write_identity
from backend.storage.layout import ProjectDir
from backend.storage.locks import file_lock

log = logging.getLogger(__name__)
SCHEMA_VERSION = 2  # 2 added `live`; a file of version 1 reads with no task live


class PredictionIdsFile(BaseModel):
    """The file's schema: `ids` maps a task id (as text: JSON keys) to its prediction's id, `live` a
    task whose prediction Label Studio serves to the internal version that wrote it."""

    schema_version: int = SCHEMA_VERSION
    ids: dict[int, int] = {}
    live: dict[int, str] = {}


class PredictionIds:
    """The task → prediction id map of one project, read once and saved by `save`."""

    def __init__(self, project_dir: ProjectDir):
        self.path = project_dir.prediction_ids
        self.lock = project_dir.prediction_ids_lock
        self._ids: dict[int, int] | None = None
        self._live: dict[int, str] = {}
        self._changed: dict[int, int | None] = {}
        self._live_changed: dict[int, str | None] = {}
        self._seen: tuple[int, int, int] | None = (
            None  # the file as last read or written (inode, mtime, size)
        )

    def get(self, task: int) -> int | None:
        return self._known().get(task)

    def put(self, task: int, prediction: int) -> None:
        self._known()[task] = prediction
        self._changed[task] = prediction

    def drop(self, task: int) -> None:
        """Forget a task's prediction (Label Studio no longer has it): it is not live either."""
        self._known().pop(task, None)
        self._changed[task] = None
        self.set_live(task, None)

    def live(self) -> dict[int, str]:
        """The live tasks, each with the internal version whose prediction it holds."""
        self._known()
        return dict(self._live)

    def set_live(self, task: int, version: str | None) -> None:
        """Record a task's prediction as served, written by `version`; None: no longer served."""
        self._known()
        if version is None:
            self._live.pop(task, None)
        else:
            self._live[task] = version
        self._live_changed[task] = version

    def save(self) -> None:
        """Merge the changes since the last save into the file (another lane may have saved since)."""
        if not self._changed and not self._live_changed:
            return
        with file_lock(self.lock):
            unchanged = self._ids is not None and self._seen is not None and self._identity() == self._seen
            ids, live = (self._ids, self._live) if unchanged else self._read()  # ours hold the changes
            merge(ids, self._changed)
            merge(live, self._live_changed)
            write_atomically(
                self.path, PredictionIdsFile.model_construct(ids=ids, live=live).model_dump_json()
            )
            self._seen = self._identity()
        self._ids, self._live, self._changed, self._live_changed = ids, live, {}, {}

    def _known(self) -> dict[int, int]:
        if self._ids is None:
            self._ids, self._live = self._read()
        return self._ids

    def _identity(self) -> tuple[int, int, int] | None:
        return write_identity(self.path)

    def _read(self) -> tuple[dict[int, int], dict[int, str]]:
        """The map and the live set on disk; empty when there is none or it is damaged (writeback
        then looks tasks up; tasks live then stay served until a head writes them again)."""
        self._seen = self._identity()  # before the read: a write meanwhile makes the next save read again
        try:
            found = PredictionIdsFile.model_validate_json(self.path.read_text())
            return found.ids, found.live
        except FileNotFoundError:
            return {}, {}
        except (OSError, ValueError, ValidationError) as exc:
            log.warning("%s cannot be read (%s): tasks are looked up in Label Studio again", self.path, exc)
            return {}, {}


def merge(into: dict[int, Any], changes: dict[int, Any]) -> None:
    """Apply changes to a map read from disk: None removes a task."""
    for task, value in changes.items():
        if value is None:
            into.pop(task, None)
        else:
            into[task] = value
