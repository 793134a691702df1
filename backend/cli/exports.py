"""`export` and `codebook`: the coded corpus and its codebook leave Label Studio for R, Stata, pandas
and QDA software (REFI-QDA); backend/exports/ writes the files, worker/exporting.py reads what they
hold (the same path the status page's export takes), this module reads the options.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from backend.cli.errors import UsageError
from backend.config import Settings
from backend.exports.tables import FORMATS, check_writable, format_of
from backend.studio.client import StudioAPI

if TYPE_CHECKING:
    from backend.worker.exporting import ExportOptions, ExportSource


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    project, out = project_number(args.project), Path(args.out)
    fmt = format_of(out, args.format)
    if fmt != "qdpx" and (args.source_field or args.order_field):
        raise UsageError(
            "--source-field and --order-field group a .qdpx project's sources; a table has one row per "
            "segment, with the interview's fields as columns"
        )
    check_writable(out)
    from backend.worker.exporting import export_project

    exported = export_project(
        export_source(studio_client(settings), settings, project), out, fmt, export_options(args)
    )
    print(f"{exported.segments} segments written to {out}", flush=True)
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
    from backend.worker.exporting import read_scheme

    scheme = read_scheme(export_source(studio, settings, project))
    with replaced(out, "wb") as handle:
        handle.write(codebook_xml(scheme, project))
    return len(scheme.codes)


def export_source(studio: StudioAPI, settings: Settings, project: int) -> ExportSource:
    from backend.worker.exporting import ExportSource

    return ExportSource(studio, project, Path(settings.server.model_dir), settings.loop)


def export_options(args: argparse.Namespace) -> ExportOptions:
    """What the command line asks of an export besides its file and format."""
    from backend.exports.qdpx import Layout
    from backend.worker.exporting import ExportOptions

    layout = Layout(args.source_field, args.order_field, args.question_field)
    return ExportOptions(args.coder_names, layout)


def studio_client(settings: Settings):
    from backend.studio.client import StudioClient

    return StudioClient(settings.server.label_studio_url, settings.server.api_key())


def project_number(text: str) -> int:
    if not str(text).isdigit():
        raise UsageError(f"--project must be a Label Studio project id (a number), got {text!r}")
    return int(text)


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
