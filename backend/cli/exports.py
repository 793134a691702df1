"""`export` and `codebook`: the coded corpus and its codebook leave Label Studio for R, Stata, pandas
and QDA software (REFI-QDA); backend/exports/ writes the files, this module reads what they hold:
the project's tasks from Label Studio, and the serving version's decisions from MODEL_DIR.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from backend.cli.errors import UsageError
from backend.config import Settings
from backend.domain.scheme import CodingScheme
from backend.domain.tasks import Task
from backend.exports.rows import HandOver, ModelView, RowMaker, data_fields
from backend.exports.tables import FORMATS, check_writable, format_of
from backend.studio.client import StudioAPI, StudioError


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    project, out = project_number(args.project), Path(args.out)
    fmt = format_of(out, args.format)
    if fmt != "qdpx" and (args.source_field or args.order_field):
        raise UsageError(
            "--source-field and --order-field group a .qdpx project's sources; a table has one row per "
            "segment, with the interview's fields as columns"
        )
    check_writable(out)
    written = export_project(studio_client(settings), settings, project, out, fmt, args)
    print(f"{written} segments written to {out}", flush=True)
    return 0


def cmd_codebook(settings: Settings, args: argparse.Namespace) -> int:
    project, out = project_number(args.project), Path(args.out)
    check_writable(out)
    written = write_codebook(studio_client(settings), settings, project, out)
    print(f"{written} codes written to {out}")
    return 0


def write_codebook(studio: StudioAPI, settings: Settings, project: int, out: Path) -> int:
    """The project's codes as a REFI-QDA codebook in `out`; returns how many codes it holds."""
    from backend.exports.codebook import codebook_xml
    from backend.exports.tables import replaced

    scheme = read_scheme(studio, project, settings)
    with replaced(out, "wb") as handle:
        handle.write(codebook_xml(scheme, project))
    return len(scheme.codes)


def export_project(
    studio: StudioAPI, settings: Settings, project: int, out: Path, fmt: str, args: argparse.Namespace
) -> int:
    """Write project `project` to `out` as `fmt`; returns how many segments were written."""
    from backend.exports import about
    from backend.exports.tables import write_table
    from backend.storage.secrets import coder_names

    scheme = read_scheme(studio, project, settings)
    model, version = serving_model(settings, project)
    names = coder_names(settings.server.model_dir, "email" if args.coder_names else "pseudonym")
    tasks = all_tasks(studio, project)
    first = next(tasks, None)
    tasks = itertools.chain([first] if first else [], tasks)
    fields = data_fields(first, scheme.text_field)
    handed, handed_records = machine_codes(settings, project)
    sample = validation_sample(settings, project)
    marks = (
        {}
        if sample is None
        else dict.fromkeys(sample.task_ids, "released" if sample.released_at else "held out")
    )
    maker = RowMaker(
        scheme, settings.loop.multi_coder_rule, studio.user_emails(), names, model, fields, handed, marks
    )
    if fmt == "qdpx":
        return write_project(maker, tasks, out, args, project)
    tally = about.Tally()
    written = write_table(tally.count(maker.rows(tasks)), maker.columns(), out, fmt, maker.kinds())
    about.write_codebook_csv(maker, about.beside(out, "codebook.csv"))
    quality = project_quality(settings, project)
    estimates = None if sample is None or sample.estimates is None else sample.estimates.model_dump()
    written_at = datetime.now(UTC).isoformat(timespec="seconds")
    facts = about.Facts(str(project), written_at, version, quality, handed_records, estimates)
    about.write_about(about.beside(out, "about.md"), about.about_text(facts, maker, tally, out.name))
    return written


def write_project(
    maker: RowMaker, tasks: Iterator[Task], out: Path, args: argparse.Namespace, project: int
) -> int:
    from backend.exports.qdpx import Layout, write_qdpx

    layout = Layout(args.source_field, args.order_field, args.question_field)
    return write_qdpx(maker, list(tasks), layout, out, f"Label Studio project {project}")


def studio_client(settings: Settings):
    from backend.studio.client import StudioClient

    return StudioClient(settings.server.label_studio_url, settings.server.api_key())


def project_number(text: str) -> int:
    if not str(text).isdigit():
        raise UsageError(f"--project must be a Label Studio project id (a number), got {text!r}")
    return int(text)


def read_scheme(studio: StudioAPI, project: int, settings: Settings) -> CodingScheme:
    """The project's coding scheme; an unknown project is a usage error naming it."""
    from backend.domain.scheme import parse_label_config

    try:
        config = studio.label_config(project)
    except StudioError as exc:
        if exc.status == 404:
            raise UsageError(f"--project {project}: Label Studio has no such project") from None
        raise
    return parse_label_config(config, settings.loop.none_choices)


def all_tasks(studio: StudioAPI, project: int) -> Iterator[Task]:
    """Every task, the annotated ones first, page by page (never the whole project in memory)."""
    yield from studio.tasks(project, annotated=True)
    yield from studio.tasks(project, annotated=False)


def serving_model(settings: Settings, project: int) -> tuple[ModelView | None, dict | None]:
    """The serving version's decisions on the pool it ranked, and its record (None, None without one)."""
    from backend.storage.layout import ProjectDir
    from backend.storage.state import StateStore
    from backend.storage.versions import ModelStore

    root = Path(settings.server.model_dir)
    directory = ProjectDir(root, str(project))
    if not directory.path.is_dir():
        return None, None
    name = StateStore(directory).read().current_version
    store = ModelStore(root)
    if not store.has(str(project), name):
        return None, None
    version = store.get(str(project), name)
    pool = store.ranked_pool(str(project), name)
    codes = version.metadata.get("codes") or []
    return (ModelView.of(name, codes, pool) if pool is not None else None), version.metadata


def machine_codes(settings: Settings, project: int) -> tuple[HandOver, dict[str, dict]]:
    """The codes handed over to the model (`autocode`): their decisions, and each record for the
    about file."""
    from backend.storage.autocode import AutoCodeStore
    from backend.storage.layout import ProjectDir

    directory = ProjectDir(Path(settings.server.model_dir), str(project))
    if not directory.path.is_dir():
        return HandOver(), {}
    codes = AutoCodeStore(directory).read().codes
    handed = HandOver.of(
        {code: (kept.version, kept.task_ids, kept.decisions) for code, kept in codes.items()}
    )
    return handed, {code: kept.model_dump() for code, kept in codes.items()}


def validation_sample(settings: Settings, project: int):
    """The project's blind validation sample (None without one)."""
    from backend.storage.layout import ProjectDir
    from backend.storage.validation import ValidationStore

    directory = ProjectDir(Path(settings.server.model_dir), str(project))
    return ValidationStore(directory).read() if directory.path.is_dir() else None


def project_quality(settings: Settings, project: int) -> dict | None:
    """The last round's quality estimate (state.json), when the project has one."""
    from backend.storage.layout import ProjectDir
    from backend.storage.state import StateStore

    directory = ProjectDir(Path(settings.server.model_dir), str(project))
    return StateStore(directory).read().monitoring.quality if directory.path.is_dir() else None


def add_commands(commands) -> None:
    export = commands.add_parser(
        "export",
        help="the coded corpus as CSV, JSON lines, Parquet or a REFI-QDA project (.qdpx)",
        description="One row per segment: its data, its final codes and where they came from (coders and "
        "how their answers were combined, the serving model version, or uncoded). Tables get a codebook "
        "and an about file beside them. Reads LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY; the key never "
        "appears in what is written. Coders appear as pseudonyms unless --coder-names.",
    )
    export.add_argument("--project", required=True, help="Label Studio project id")
    export.add_argument("--out", required=True, help="the file to write (.csv, .jsonl, .parquet or .qdpx)")
    export.add_argument("--format", help=f"one of {', '.join(FORMATS)} (default: from the suffix of --out)")
    export.add_argument(
        "--coder-names",
        action="store_true",
        help="name coders by their Label Studio email instead of a pseudonym (only where the team agreed)",
    )
    export.add_argument(
        "--source-field",
        help="qdpx: the task data field that names a segment's interview (e.g. interview_id): one text "
        "source and one case per interview (default: one source per segment)",
    )
    export.add_argument(
        "--order-field",
        help="qdpx: the field that orders an interview's segments (e.g. speech_index; default: task id)",
    )
    export.add_argument(
        "--question-field",
        default="question",
        help="qdpx: the field holding the question put before each answer (default: %(default)s)",
    )
    export.set_defaults(handler=cmd_export)

    codebook = commands.add_parser(
        "codebook",
        help="write a project's codes as a REFI-QDA codebook (.qdc) for MAXQDA, ATLAS.ti, NVivo, QualCoder",
        description="The codes of the project's label config, in its order, with each option's hint as "
        "the code's description. Reads LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY.",
    )
    codebook.add_argument("--project", required=True, help="Label Studio project id")
    codebook.add_argument("--out", required=True, help="the .qdc file to write")
    codebook.set_defaults(handler=cmd_codebook)
