"""The one way to export a project: read what the files of backend/exports/ hold (the project's tasks
from Label Studio, the serving version's decisions and the last quality estimate from MODEL_DIR) and
write them. `coding-backend export` (cli/exports.py) and the status page's export job
(worker/jobs/export.py) both come here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from backend.config import LoopSettings
from backend.domain.scheme import CodingScheme, parse_label_config
from backend.domain.tasks import Task
from backend.exports import about
from backend.exports.qdpx import Layout, write_qdpx
from backend.exports.rows import HandOver, ModelView, RowMaker, data_fields
from backend.exports.tables import ExportError, write_table
from backend.storage.autocode import AutoCodeStore
from backend.storage.layout import ProjectDir
from backend.storage.prediction_ids import PredictionIds
from backend.storage.secrets import coder_names
from backend.storage.state import StateStore
from backend.storage.validation import ValidationSample, ValidationStore
from backend.storage.versions import ModelStore
from backend.studio.client import StudioAPI, StudioError

Progress = Callable[[int, int], None]  # (tasks read, tasks in the project)


class UnknownProjectError(ExportError):
    """An export of a project Label Studio does not hold."""

    http_status = 404


@dataclass(frozen=True)
class ExportSource:
    """Where an export reads: project `project` in Label Studio, and MODEL_DIR (`root`) for its serving
    version, its quality estimate and the key of coders' pseudonyms; the loop's settings say how several
    coders' answers combine and which answers mean "none of these"."""

    studio: StudioAPI
    project: int
    root: Path
    loop: LoopSettings


@dataclass(frozen=True)
class ExportOptions:
    """What a lead may ask of an export besides its format: coders by email instead of pseudonym (only
    where the team agreed), and how a .qdpx groups segments into sources."""

    coder_names: bool = False
    layout: Layout = field(default_factory=Layout)


@dataclass(frozen=True)
class Exported:
    """What an export wrote: how many segments, and the serving version whose decisions it holds."""

    segments: int
    version: str | None


def export_project(
    source: ExportSource, out: Path, fmt: str, options: ExportOptions, progress: Progress | None = None
) -> Exported:
    """Write the project to `out` as `fmt` (a table gets its codebook and about file beside it);
    `progress` hears how many of the project's tasks were read so far."""
    scheme = read_scheme(source)
    model, version = serving_model(source)
    names = coder_names(source.root, "email" if options.coder_names else "pseudonym")
    tasks = all_tasks(source.studio, source.project)
    if progress is not None:
        tasks = counted(tasks, source.studio.task_count(source.project), progress)
    first = next(tasks, None)
    tasks = itertools.chain([first] if first else [], tasks)
    fields = data_fields(first, scheme.text_field)
    rule, emails = source.loop.multi_coder_rule, source.studio.user_emails()
    handed, handed_records = machine_codes(source)
    sample = validation_sample(source)
    marks = (
        {}
        if sample is None
        else dict.fromkeys(sample.task_ids, "released" if sample.released_at else "held out")
    )
    maker = RowMaker(scheme, rule, emails, names, model, fields, handed, marks)
    name = version.get("version") if version else None
    if fmt == "qdpx":
        label = f"Label Studio project {source.project}"
        return Exported(write_qdpx(maker, list(tasks), options.layout, out, label), name)
    tally = about.Tally()
    written = write_table(tally.count(maker.rows(tasks)), maker.columns(), out, fmt, maker.kinds())
    about.write_codebook_csv(maker, about.beside(out, "codebook.csv"))
    quality = project_quality(source)
    estimates = None if sample is None or sample.estimates is None else sample.estimates.model_dump()
    written_at = datetime.now(UTC).isoformat(timespec="seconds")
    facts = about.Facts(str(source.project), written_at, version, quality, handed_records, estimates)
    about.write_about(about.beside(out, "about.md"), about.about_text(facts, maker, tally, out.name))
    return Exported(written, name)


def read_scheme(source: ExportSource) -> CodingScheme:
    """The project's coding scheme; an unknown project is an error naming it."""
    try:
        config = source.studio.label_config(source.project)
    except StudioError as exc:
        if exc.status == 404:
            raise UnknownProjectError(f"project {source.project}: Label Studio has no such project") from None
        raise
    return parse_label_config(config, source.loop.none_choices)


def all_tasks(studio: StudioAPI, project: int) -> Iterator[Task]:
    """Every task, the annotated ones first, page by page (never the whole project in memory)."""
    yield from studio.tasks(project, annotated=True)
    yield from studio.tasks(project, annotated=False)


def counted(tasks: Iterator[Task], total: int, progress: Progress) -> Iterator[Task]:
    """The tasks, telling `progress` how many were read (before the first, and after each)."""
    progress(0, total)
    for done, task in enumerate(tasks, start=1):
        yield task
        progress(done, total)


def serving_model(source: ExportSource) -> tuple[ModelView | None, dict | None]:
    """The serving version's decisions on the pool it ranked, and its record (None, None without one)."""
    project = str(source.project)
    directory = ProjectDir(source.root, project)
    if not directory.path.is_dir():
        return None, None
    name = StateStore(directory).read().current_version
    store = ModelStore(source.root)
    if not store.has(project, name):
        return None, None
    version = store.get(project, name)
    pool = store.ranked_pool(project, name)
    codes = version.metadata.get("codes") or []
    if pool is None:
        return None, version.metadata
    live = [task for task, writer in PredictionIds(directory).live().items() if writer == name]
    return ModelView.of(name, codes, pool, live), version.metadata


def machine_codes(source: ExportSource) -> tuple[HandOver, dict[str, dict]]:
    """The codes handed over to the model (`autocode`): their decisions, and each record for the
    about file."""
    directory = ProjectDir(source.root, str(source.project))
    if not directory.path.is_dir():
        return HandOver(), {}
    codes = AutoCodeStore(directory).read().codes
    handed = HandOver.of(
        {code: (kept.version, kept.task_ids, kept.decisions) for code, kept in codes.items()}
    )
    return handed, {code: kept.model_dump() for code, kept in codes.items()}


def validation_sample(source: ExportSource) -> ValidationSample | None:
    """The project's blind validation sample (None without one)."""
    directory = ProjectDir(source.root, str(source.project))
    return ValidationStore(directory).read() if directory.path.is_dir() else None


def project_quality(source: ExportSource) -> dict | None:
    """The last round's quality estimate (state.json), when the project has one."""
    directory = ProjectDir(source.root, str(source.project))
    return StateStore(directory).read().monitoring.quality if directory.path.is_dir() else None
