"""Every write of our predictions, for automation bias: ``MODEL_DIR/<project>/suggestions.json``.

A task's one prediction is rewritten in place by each version (studio/writeback.py), so what a coder
saw when they started an annotation is the write live then, not the prediction's result now
(learning/bias.py). This log keeps, per task, when each write happened, the prediction's id, the
internal version that wrote it (Label Studio shows every served prediction under one name) and the
choices it suggested (not the evidence regions); a demotion renames a prediction without changing
what it suggests, and is not logged. It stays small: only a version's
queue head is written (about WRITE_HEAD tasks a round), and a task keeps its last KEEP_PER_TASK
writes. This module is its only reader and writer.

Both lanes write predictions (rounds, imported tasks; the codebook's queue), so, like
storage/prediction_ids.py, each save merges its new writes into the file under `.suggestions-lock`
and writes it atomically, one save per write step. A damaged or lost log only leaves the
annotations started before it unjudged.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from pydantic import BaseModel, ValidationError

from backend.domain.versions import IMPORTED
from backend.learning.bias import Shown
from backend.storage.atomic import write_atomically
from backend.storage.layout import ProjectDir
from backend.storage.locks import file_lock
from backend.storage.state import now

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1
# A coder sees the write live when they start; a task written this often is in the queue head round
# after round without being coded, and its older writes were long replaced (a lock lasts a day).
KEEP_PER_TASK = 20


class Write(BaseModel):
    """One write: when (UTC), our prediction's id, the version, and the choices per control."""

    at: str
    prediction: int  # IMPORTED (0): made by an import call, which answers no ids
    version: str
    choices: dict[str, list[str]]


class SuggestionsFile(BaseModel):
    """The file's schema: a task id → its writes, oldest first."""

    schema_version: int = SCHEMA_VERSION
    writes: dict[int, list[Write]] = {}


def choices_of(prediction: dict) -> dict[str, list[str]]:
    """A prediction's suggested choices per control (its evidence regions left out)."""
    found: dict[str, list[str]] = {}
    for item in prediction.get("result") or []:
        if item.get("type", "choices") == "choices":
            found.setdefault(str(item.get("from_name")), []).extend(
                (item.get("value") or {}).get("choices") or []
            )
    return found


class SuggestionLog:
    """One project's log of prediction writes: `add` keeps a write in memory, `save` merges them in."""

    def __init__(self, project_dir: ProjectDir):
        self.path = project_dir.suggestions
        self.lock = project_dir.suggestions_lock
        self._new: dict[int, list[Write]] = {}

    def add(self, task: int, prediction: int, written: dict) -> None:
        """Label Studio holds `written` as prediction `prediction` of `task` from now on."""
        write = Write(
            at=now(),
            prediction=prediction,
            version=str(written.get("model_version")),
            choices=choices_of(written),
        )
        self._new.setdefault(task, []).append(write)

    def save(self) -> None:
        """Merge the writes since the last save into the file (another lane may have saved since)."""
        if not self._new:
            return
        with file_lock(self.lock):
            writes = self._read()
            for task, new in self._new.items():
                writes[task] = sorted(writes.get(task, []) + new, key=lambda write: write.at)[-KEEP_PER_TASK:]
            write_atomically(self.path, SuggestionsFile(writes=writes).model_dump_json())
        self._new = {}

    def read(self, codes_of) -> dict[int, list[Shown]]:
        """Every task's writes, oldest first, their choices turned into codes by `codes_of` (a result
        → codes: the scheme's, so a renamed option reads as the form reads it now)."""
        return {
            task: [
                Shown(
                    datetime.fromisoformat(write.at),
                    None if write.prediction == IMPORTED else write.prediction,
                    write.version,
                    frozenset(codes_of(result_of(write.choices))),
                )
                for write in writes
            ]
            for task, writes in self._read().items()
        }

    def _read(self) -> dict[int, list[Write]]:
        try:
            return SuggestionsFile.model_validate(json.loads(self.path.read_text())).writes
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, ValidationError) as exc:
            log.warning("%s cannot be read (%s): earlier suggestions are unknown", self.path, exc)
            return {}


def result_of(choices: dict[str, list[str]]) -> list[dict]:
    """Kept choices as a Label Studio result again (what CodingScheme.codes_of reads)."""
    return [
        {"from_name": name, "type": "choices", "value": {"choices": chosen}}
        for name, chosen in choices.items()
    ]
