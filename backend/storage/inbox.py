"""The annotations webhooks brought since the fast loop's last round: its shortcut, never its truth.

Label Studio's ANNOTATION_CREATED / _UPDATED webhooks carry the annotation and its task. The fast
loop refits the head on what it read last plus these, instead of reading every annotated task
again first (seconds on a large project), and reads everything afterwards to reconcile
(worker/labels.py). An event lost, unreadable or over the cap therefore costs a round, never a
label.

    MODEL_DIR/<project>/inbox/<arrival ns>-<annotation id>.json      one AnnotationEvent each
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from backend.storage.atomic import write_atomically

log = logging.getLogger(__name__)
MAX_EVENTS = 1000  # beyond it events are not kept: the round reads everything from Label Studio


class AnnotationEvent(BaseModel):
    """One annotation as a webhook brought it; `annotation` is None when annotations were deleted
    (the event then only says that the labels changed in a way the shortcut cannot follow)."""

    model_config = ConfigDict(extra="forbid")

    task_id: int
    task_data: dict
    annotation: dict | None = None


class Inbox:
    """A project's inbox directory: the webhook puts, the fast lane takes."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def put(self, event: AnnotationEvent) -> bool:
        """Keep an event for the next round; returns False when it could not be kept (the inbox is
        full, the disk is): the round then reads what it lacks from Label Studio."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if sum(1 for _ in self.directory.glob("*.json")) >= MAX_EVENTS:
                return False
            annotation_id = int((event.annotation or {}).get("id") or 0)
            write_atomically(
                self.directory / f"{time.time_ns()}-{annotation_id}.json", event.model_dump_json()
            )
        except OSError as exc:
            log.warning("an annotation event was not kept in %s: %s", self.directory, exc)
            return False
        return True

    def take(self) -> list[AnnotationEvent] | None:
        """Remove and return the events in the order they arrived; None when one could not be read
        (or the inbox overflowed), so the caller must read everything."""
        files = self._files()
        events = self._read(files)
        for path in files:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return events

    def peek(self) -> list[AnnotationEvent] | None:
        """The events waiting, as :meth:`take` returns them, left in place."""
        return self._read(self._files())

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*.json"), key=lambda path: int(path.name.split("-", 1)[0]))

    @staticmethod
    def _read(files: list[Path]) -> list[AnnotationEvent] | None:
        if len(files) >= MAX_EVENTS:
            return None
        events = []
        for path in files:
            try:
                events.append(AnnotationEvent.model_validate_json(path.read_bytes()))
            except FileNotFoundError:
                continue  # taken meanwhile by the round it was for
            except (OSError, ValidationError, ValueError) as exc:
                log.warning("an annotation event in %s could not be read (%s); reading all", path.parent, exc)
                return None
        return events
