"""The exports a lead asks for on the status page (server/downloads.py), in the background lane.

An export of a large project reads every task from Label Studio (11,656 segments: tens of seconds)
and, for a `.qdpx`, builds the whole project in memory, so it never runs inside an HTTP request. The
job takes each format whose export was asked for (or was cut short by a killed worker, which the
sweep asks for once more) and writes it through the one export path (worker/exporting.py) into the
project's exports folder (storage/exports.py), recording the tasks read so far for the page's ETA.
A failure is recorded in the export's record, where the page shows it; the lane goes on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from backend.errors import BackendError
from backend.storage.exports import FILES, ExportRecords, ExportStatus, ExportStore, FinishedExport
from backend.storage.state import now
from backend.worker.context import ProjectContext

log = logging.getLogger(__name__)


@dataclass
class ExportProgress:
    """Records one format's export in progress: at most once per `every` seconds while tasks are read."""

    store: ExportStore
    fmt: str
    every: float = 1.0
    _last: float = field(default=float("-inf"), init=False)

    def started(self) -> None:
        def start(records: ExportRecords) -> None:
            record = records.formats[self.fmt]
            record.status, record.started_at, record.error = ExportStatus.RUNNING, now(), None
            record.done, record.total = 0, None

        self.store.update(start)

    def read(self, done: int, total: int) -> None:
        moment = time.monotonic()
        if moment - self._last < self.every and done < total:
            return
        self._last = moment

        def count(records: ExportRecords) -> None:
            records.formats[self.fmt].done, records.formats[self.fmt].total = done, total

        self.store.update(count)

    def ended(self, finished: FinishedExport | None, error: str | None) -> None:
        def end(records: ExportRecords) -> None:
            record = records.formats[self.fmt]
            record.status, record.error = (ExportStatus.FAILED, error) if error else (ExportStatus.DONE, None)
            record.finished = finished or record.finished

        self.store.update(end)


@dataclass(frozen=True)
class ProjectExports:
    """Each export asked for, one format after the other; progress recorded at most every `every` s."""

    ctx: ProjectContext
    every: float = 1.0

    def run(self) -> None:
        store = ExportStore(self.ctx.store.layout.project(self.ctx.project))
        for fmt in FILES:
            record = store.read().formats.get(fmt)
            if record is not None and record.unfinished:
                self.export(store, fmt)

    def export(self, store: ExportStore, fmt: str) -> None:
        """Write one format's export and record how it ended (a failure too: the lane goes on)."""
        from backend.exports.qdpx import Layout
        from backend.worker.exporting import ExportOptions, ExportSource, export_project

        ctx, progress = self.ctx, ExportProgress(store, fmt, self.every)
        record = store.read().formats[fmt]
        options = ExportOptions(layout=Layout(record.source_field, record.order_field))
        source = ExportSource(ctx.studio, ctx.project_id, ctx.store.root, ctx.loop)
        progress.started()
        try:
            with store.writing(fmt) as out:
                exported = export_project(source, out, fmt, options, progress.read)
        except Exception as exc:
            log.exception("project %s: the %s export failed", ctx.project, fmt)
            said = str(exc) if isinstance(exc, BackendError) else f"{type(exc).__name__}: {exc}"
            progress.ended(None, said)
            return
        size = store.file(fmt).stat().st_size
        finished = FinishedExport(
            finished_at=now(), size=size, version=exported.version, segments=exported.segments
        )
        progress.ended(finished, None)
        log.info("project %s: %s export of %d segments written", ctx.project, fmt, exported.segments)
