"""The annotations webhooks brought since the fast loop's last round: its shortcut, never its truth.

Label Studio's ANNOTATION_CREATED / _UPDATED webhooks carry the annotation and its task. The fast
loop refits the head on what it read last plus these, instead of reading every annotated task
again first (seconds on a large project), and reads everything afterwards to reconcile
(worker/labels.py). An event lost, unreadable or over a cap therefore costs a round, never a
label.

    MODEL_DIR/<project>/inbox/<arrival ns>-<annotation id>.json      one AnnotationEvent each
    MODEL_DIR/<project>/inbox/.dropped        events were not kept: the next round reads everything
    MODEL_DIR/<project>/inbox/.taken-by-<id>  empty: who took the events last (a worker process's
                                              labels in memory are current only while it is itself)
    MODEL_DIR/.inbox-lock                     held while the webhook weighs an event against the caps

An event keeps of its task only the text the project's form codes, and of its annotation what the
loop reads (ANNOTATION_KEYS). The inboxes are bounded: MAX_EVENTS and INBOX_MAX_BYTES_PER_PROJECT
per project, INBOX_MAX_BYTES across projects, each event counted in whole 4 KiB disk blocks. Beyond a
cap the newest events are refused: which ones go does not matter, since the next round reads
everything from Label Studio, and refusing never deletes what a round may be reading.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from backend.storage.atomic import write_atomically
from backend.storage.layout import StoreLayout
from backend.storage.locks import file_lock

log = logging.getLogger(__name__)
MAX_EVENTS = 1000  # beyond it events are not kept: the round reads everything from Label Studio
BLOCK = 4096  # a file takes whole blocks of the disk, however small
DROPPED = ".dropped"
TAKEN_BY = ".taken-by-"
# what a round reads: the codes and who gave them when; and the suggestion the coder started from
# and when they started (learning/bias.py)
ANNOTATION_KEYS = (
    "id",
    "result",
    "was_cancelled",
    "completed_by",
    "updated_at",
    "created_at",
    "parent_prediction",
    "lead_time",
    "draft_created_at",
)


class AnnotationEvent(BaseModel):
    """One annotation as a webhook brought it; `annotation` is None when annotations were deleted
    (the event then only says that the labels changed in a way the shortcut cannot follow)."""

    model_config = ConfigDict(extra="forbid")

    task_id: int
    task_data: dict
    annotation: dict | None = None

    @classmethod
    def of(cls, task_id: int, task_data: dict, annotation: dict, text_field: str | None) -> AnnotationEvent:
        """The event of an annotation, with no more of it than the fast loop reads: of the task the
        text in `text_field` (None: the form is unknown, every text field), of the annotation
        ANNOTATION_KEYS."""
        if text_field is None:
            data = {key: value for key, value in task_data.items() if isinstance(value, str)}
        else:
            text = task_data.get(text_field)
            data = {text_field: text} if isinstance(text, str) else {}
        return cls(
            task_id=task_id, task_data=data, annotation={key: annotation.get(key) for key in ANNOTATION_KEYS}
        )


@dataclass(frozen=True)
class Room:
    """How many more bytes an inbox may take, and the cap that says so (named when it is reached)."""

    bytes: int
    cap: str


class Inbox:
    """A project's inbox directory: the webhook puts, the fast lane takes."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    @property
    def dropped(self) -> Path:
        return self.directory / DROPPED

    def put(self, event: AnnotationEvent, room: Room | None = None) -> bool:
        """Keep an event for the next round; returns False when it was not kept (a cap reached, the disk
        full): the round then reads what it lacks from Label Studio."""
        content = event.model_dump_json()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if self.dropped.exists():
                return False  # its next round reads everything: an event kept now would not be read
            held = len(self._files())
            cap = self._reached(held, blocks(len(content.encode())), room)
            if cap is not None:
                self._drop(held, cap)
                return False
            annotation_id = int((event.annotation or {}).get("id") or 0)
            write_atomically(self.directory / f"{time.time_ns()}-{annotation_id}.json", content)
        except OSError as exc:
            log.warning("an annotation event was not kept in %s: %s", self.directory, exc)
            return False
        return True

    def take(self, taker: str = "") -> list[AnnotationEvent] | None:
        """Remove and return the events in the order they arrived; None when one could not be read
        or some were dropped, so the caller must read everything. `taker` is noted as the last to
        take them (:meth:`taken_last_by`)."""
        self._note_taker(taker)
        dropped = self._unmark()  # first: a drop from now on marks the next take
        files = self._files()
        events = None if dropped else self._read(files)
        for path in files:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return events

    def taken_last_by(self, taker: str) -> bool:
        """Whether `taker` took the events last: then what it read before plus the events waiting
        are every annotation, and no other process took some of them meanwhile."""
        return bool(taker) and (self.directory / f"{TAKEN_BY}{taker}").exists()

    def _note_taker(self, taker: str) -> None:
        """Note `taker` as the last to take (only one worker at a time takes: the lane's lock). A note
        that fails leaves none: the next taker then reads everything, which is always safe. A taker
        noted already (a worker at its lane, round after round) costs one look, not a rewrite."""
        if self.taken_last_by(taker):
            return
        with contextlib.suppress(OSError):
            for note in self.directory.glob(f"{TAKEN_BY}*"):
                note.unlink(missing_ok=True)
            if taker:
                self.directory.mkdir(parents=True, exist_ok=True)
                (self.directory / f"{TAKEN_BY}{taker}").touch()

    def peek(self) -> list[AnnotationEvent] | None:
        """The events waiting, as :meth:`take` returns them, left in place."""
        return None if self.dropped.exists() else self._read(self._files())

    def weight(self) -> int:
        """The bytes the inbox's files take on disk (in whole blocks)."""
        total = 0
        with (
            contextlib.suppress(FileNotFoundError, NotADirectoryError),
            os.scandir(self.directory) as entries,
        ):
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    total += blocks(entry.stat().st_size)
        return total

    @staticmethod
    def _reached(held: int, size: int, room: Room | None) -> str | None:
        """The cap keeping this event would exceed, if any."""
        if held >= MAX_EVENTS:
            return f"{MAX_EVENTS} events per project"
        if room is not None and size > room.bytes:
            return room.cap
        return None

    def _drop(self, held: int, cap: str) -> None:
        self.dropped.touch()
        log.warning(
            "project %s: annotation events beyond %s are dropped (%d kept); its next round reads every "
            "annotation from Label Studio",
            self.directory.parent.name,
            cap,
            held,
        )

    def _unmark(self) -> bool:
        """Remove the mark of dropped events; whether there was one."""
        try:
            self.dropped.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*.json"), key=lambda path: int(path.name.split("-", 1)[0]))

    @staticmethod
    def _read(files: list[Path]) -> list[AnnotationEvent] | None:
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


def blocks(size: int) -> int:
    """What a file of `size` bytes takes on disk: whole blocks (an empty one, none)."""
    return -(-size // BLOCK) * BLOCK


class Inboxes:
    """Every project's inbox in a store, within INBOX_MAX_BYTES_PER_PROJECT and INBOX_MAX_BYTES across
    projects: how the webhook keeps events (a worker takes its project's from :class:`Inbox`)."""

    def __init__(self, layout: StoreLayout, project_bytes: int, total_bytes: int):
        self.layout, self.project_bytes, self.total_bytes = layout, project_bytes, total_bytes

    def put(self, project: str, event: AnnotationEvent) -> bool:
        """Keep an event unless a cap is reached. Weighed and written under one lock, so webhooks
        arriving together cannot overshoot the caps together."""
        inbox = Inbox(self.layout.project(project).inbox)
        try:
            with file_lock(self.layout.inbox_lock):
                return inbox.put(event, self.room(inbox))
        except OSError as exc:
            log.warning("project %s: an annotation event was not kept: %s", project, exc)
            return False

    def room(self, inbox: Inbox) -> Room:
        """What `inbox` may still take: the smaller of its own room and that of all inboxes."""
        own = self.project_bytes - inbox.weight()
        everyone = self.total_bytes - sum(
            Inbox(self.layout.project(project).inbox).weight() for project in self.layout.projects()
        )
        if own <= everyone:
            return Room(own, f"INBOX_MAX_BYTES_PER_PROJECT ({self.project_bytes} bytes)")
        return Room(everyone, f"INBOX_MAX_BYTES ({self.total_bytes} bytes across projects)")
