"""`agreement`: inter-coder agreement of a Label Studio project or a JSONL file, per code and overall."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from backend.cli.errors import UsageError
from backend.config import Settings


def cmd_agreement(settings: Settings, args: argparse.Namespace) -> int:
    from backend.domain.agreement import agreement, agreement_table
    from backend.research.corpus import file_answers
    from backend.storage.secrets import coder_names

    if bool(args.project) == bool(args.data):
        raise UsageError("give either --project ID (Label Studio) or --data FILE (JSONL)")
    codes, answers = project_answers(settings, args.project) if args.project else file_answers(args.data)
    if args.coders:
        wanted = {coder.strip().lower() for coder in args.coders.split(",") if coder.strip()}
        answers = {task: [a for a in given if a.coder in wanted] for task, given in answers.items()}
    if args.project:  # named as /metrics names them (CODER_IDENTITIES); a file's coders as given
        answers = coder_names(settings.server.model_dir, settings.server.coder_identities).answers(answers)
    result = agreement(answers, codes)
    print(json.dumps(result, indent=2) if args.json else agreement_table(result))
    if not result["tasks"]:
        print("no task was coded by two or more coders: nothing to compare", file=sys.stderr)
    return 0


def project_answers(settings: Settings, project: str) -> tuple[list[str], dict]:
    """Each coder's latest answer per annotated task of a Label Studio project."""
    from backend.domain.annotations import answers_by_task
    from backend.domain.scheme import parse_label_config
    from backend.studio.client import StudioClient

    if not project.isdigit():
        raise UsageError(f"--project must be a Label Studio project id (a number), got {project!r}")
    studio = StudioClient(settings.server.label_studio_url, settings.server.api_key())
    scheme = parse_label_config(studio.label_config(int(project)), settings.loop.none_choices)
    answers = answers_by_task(studio.tasks(int(project), annotated=True), scheme, studio.user_emails())
    return scheme.codes, answers


def add_commands(commands) -> None:
    agree = commands.add_parser("agreement", help="inter-coder agreement per code and overall")
    agree.add_argument("--project", help="Label Studio project id (uses LABEL_STUDIO_URL / _API_KEY)")
    agree.add_argument("--data", type=Path, help='or JSONL lines {"id", "coder", "codes": [...]}')
    agree.add_argument("--coders", help="only these coders (comma-separated emails)")
    agree.add_argument("--json", action="store_true", help="print the figures as JSON")
    agree.set_defaults(handler=cmd_agreement)
