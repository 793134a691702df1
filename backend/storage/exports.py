"""The exports a lead asks for on the status page: ``MODEL_DIR/<project>/exports/``.

One export per format, under fixed names (`corpus.csv` with the `corpus.codebook.csv` and
`corpus.about.md` written beside it; `corpus.qdpx`): a new export is written into a partial folder
and its files are renamed over the old ones, so the folder never holds more than one export per
format, nor half of one. ``exports.json`` records each format's export: asked for, under way (tasks
read of how many, since when), failed (why), and the last finished one (when, its size, the serving
version it holds, its segments). :class:`ExportStore` is the only reader and writer of both: each
change of the record a read-modify-write under the folder's lock, written atomically.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend.storage.atomic import sync_directory, write_atomically
from backend.storage.layout import ProjectDir
from backend.storage.locks import file_lock
from backend.storage.state import now

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1
STEM = "corpus"
# Each format's files: the one a download names first, then what is written beside it.
FILES = {
    "csv": (f"{STEM}.csv", f"{STEM}.codebook.csv", f"{STEM}.about.md"),
    "qdpx": (f"{STEM}.qdpx",),
}


class ExportStatus(StrEnum):
    REQUESTED = "requested"
    RUNNING = "running"
    FAILED = "failed"
    DONE = "done"


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=True)


class FinishedExport(_Record):
    """A file that can be downloaded: when it was written, its size in bytes, the serving version whose
    decisions it holds (None before the first round), how many segments."""

    finished_at: str
    size: int
    version: str | None = None
    segments: int


class ExportRecord(_Record):
    """One format's export: the last attempt (its progress while it runs, its error when it failed) and
    the last finished file, which stays downloadable while a newer one is written."""

    status: ExportStatus = ExportStatus.REQUESTED
    requested_at: str = Field(default_factory=now)
    started_at: str | None = None
    done: int = 0  # tasks read from Label Studio
    total: int | None = None  # tasks in the project when the export started
    error: str | None = None
    finished: FinishedExport | None = None
    # a .qdpx's sources: the field naming each segment's interview, the one ordering them in it
    source_field: str | None = None
    order_field: str | None = None

    @property
    def unfinished(self) -> bool:
        """Asked for or under way (whether a worker is still at it is the queue's to say)."""
        return self.status in (ExportStatus.REQUESTED, ExportStatus.RUNNING)


class ExportRecords(_Record):
    schema_version: int = SCHEMA_VERSION
    formats: dict[str, ExportRecord] = Field(default_factory=dict)


class ExportStore:
    """Reads and changes one project's exports: the record and the files."""

    def __init__(self, project_dir: ProjectDir):
        self.dir = project_dir
        self.folder = project_dir.exports
        self.record = self.folder / "exports.json"
        self.lock = self.folder / ".exports-lock"

    def read(self) -> ExportRecords:
        """The record; an empty one without a file (or when it is damaged: logged, the files stay)."""
        try:
            return ExportRecords.model_validate(json.loads(self.record.read_text()))
        except FileNotFoundError:
            return ExportRecords()
        except (OSError, ValueError, ValidationError) as exc:
            log.error("project %s: exports.json cannot be read (%s)", self.dir.project, exc)
            return ExportRecords()

    def update(self, change: Callable[[ExportRecords], object]) -> ExportRecords:
        """Apply `change` to the record and write it, holding the folder's lock (`change` may raise:
        then nothing is written)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with file_lock(self.lock):
            records = self.read()
            change(records)
            write_atomically(self.record, records.model_dump_json(indent=2))
        return records

    def file(self, fmt: str, part: int = 0) -> Path | None:
        """The finished export's file of `fmt` (`part` 0: the file itself; 1, 2: what is beside a table),
        None when there is none."""
        path = self.folder / FILES[fmt][part]
        return path if path.is_file() else None

    @contextlib.contextmanager
    def writing(self, fmt: str) -> Iterator[Path]:
        """The path to write a new export of `fmt` to (in a partial folder); when the block ends without
        an error its files replace the old ones, each synced and renamed. The partial folder goes either
        way (one a killed worker left is removed at the server's start: storage/cleanup.py)."""
        partial = self.folder / f".partial-{uuid.uuid4().hex}"
        partial.mkdir(parents=True)
        try:
            yield partial / FILES[fmt][0]
            for name in FILES[fmt]:
                written = partial / name
                if written.exists():
                    with open(written, "rb") as handle:
                        os.fsync(handle.fileno())
                    os.replace(written, self.folder / name)
                else:
                    (self.folder / name).unlink(missing_ok=True)  # not part of this export: not kept
            sync_directory(self.folder)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
