"""`agreement`: inter-coder agreement of a Label Studio project or a JSONL file, per code and overall,
and with `--with-model` the model as one more coder."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from backend.cli.errors import UsageError
from backend.config import Settings

MODEL_METHOD = (
    "out-of-fold decisions of a fresh logistic head per code (stratified k-fold, k <= 5, a task's rows "
    "in one fold) on the embeddings of MODEL_NAME's base body, never fine-tuned on these labels, at "
    "PREDICTION_THRESHOLD; trained on the coders' answers combined by MULTI_CODER_RULE"
)


def cmd_agreement(settings: Settings, args: argparse.Namespace) -> int:
    from backend.domain.agreement import agreement, agreement_table, model_agreement_table
    from backend.research.corpus import file_answers
    from backend.storage.secrets import coder_names

    if bool(args.project) == bool(args.data):
        raise UsageError("give either --project ID (Label Studio) or --data FILE (JSONL)")
    codes, answers, texts = (
        project_answers(settings, args.project) if args.project else file_answers(args.data)
    )
    if args.coders:
        wanted = {coder.strip().lower() for coder in args.coders.split(",") if coder.strip()}
        answers = {task: [a for a in given if a.coder in wanted] for task, given in answers.items()}
    if args.project:  # named as /metrics names them (CODER_IDENTITIES); a file's coders as given
        answers = coder_names(settings.server.model_dir, settings.server.coder_identities).answers(answers)
    result = agreement(answers, codes)
    if args.with_model:
        result["model"] = model_as_coder(settings, codes, answers, texts)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(agreement_table(result))
        if args.with_model:
            print()
            print(model_agreement_table(result["model"], result))
    if not result["tasks"]:
        print("no task was coded by two or more coders: nothing to compare", file=sys.stderr)
    return 0


def project_answers(settings: Settings, project: str) -> tuple[list[str], dict, dict]:
    """Each coder's latest answer per annotated task of a Label Studio project, and the tasks' texts."""
    from backend.domain.annotations import answers_by_task
    from backend.domain.scheme import parse_label_config
    from backend.studio.client import StudioClient

    if not project.isdigit():
        raise UsageError(f"--project must be a Label Studio project id (a number), got {project!r}")
    studio = StudioClient(settings.server.label_studio_url, settings.server.api_key())
    scheme = parse_label_config(studio.label_config(int(project)), settings.loop.none_choices)
    tasks = list(studio.tasks(int(project), annotated=True))
    answers = answers_by_task(tasks, scheme, studio.user_emails())
    return scheme.codes, answers, {task.id: scheme.text_in(task.data) for task in tasks}


def model_as_coder(settings: Settings, codes: Sequence[str], answers: Mapping, texts: Mapping) -> dict:
    """The model's agreement with each coder (see MODEL_METHOD): a head cross-validated on every
    answered segment with a text, over the base body's embeddings."""
    from dataclasses import replace

    import numpy as np

    from backend.cli.models import usable_model
    from backend.domain.agreement import model_agreement
    from backend.domain.annotations import combine
    from backend.domain.scheme import label_matrix
    from backend.learning.quality import out_of_fold_decisions
    from backend.learning.setfit_model import base_model

    rule = settings.loop.multi_coder_rule
    rows = [
        (task, chosen)
        for task, given in answers.items()
        if given and str(texts.get(task, "")).strip()
        for chosen, _ in combine(given, rule, codes)
    ]
    if not rows:
        raise UsageError("no answered segment has a text: the model has nothing to learn from")
    settings = usable_model(settings)
    tasks = list(dict.fromkeys(task for task, _ in rows))
    print(f"encoding {len(tasks)} segment(s) with {settings.model.model_name}", file=sys.stderr)
    vectors = base_model(codes, settings.model.encoder_options()).embed([texts[task] for task in tasks])
    row_of = {task: i for i, task in enumerate(tasks)}
    embeddings = vectors[[row_of[task] for task, _ in rows]]
    matrix = label_matrix([chosen for _, chosen in rows], codes).reshape(len(rows), len(codes))
    options = replace(settings.model.head_options(), kind="logistic")  # as MODEL_METHOD says
    groups = np.array([row_of[task] for task, _ in rows])
    decisions = out_of_fold_decisions(
        embeddings, matrix, options.default_thresholds(len(codes)), options, groups
    )
    by_task = {task: decisions[i] for i, (task, _) in enumerate(rows)}  # a task's rows share one answer
    figures = model_agreement(answers, by_task, codes)
    return {**figures, "method": MODEL_METHOD, "model_name": Path(settings.model.model_name).name}


def add_commands(commands) -> None:
    agree = commands.add_parser("agreement", help="inter-coder agreement per code and overall")
    agree.add_argument("--project", help="Label Studio project id (uses LABEL_STUDIO_URL / _API_KEY)")
    agree.add_argument("--data", type=Path, help='or JSONL lines {"id", "coder", "codes": [...], "text"}')
    agree.add_argument("--coders", help="only these coders (comma-separated emails)")
    agree.add_argument(
        "--with-model",
        action="store_true",
        help="add the model as one more coder: out-of-fold answers of a head on MODEL_NAME's base body",
    )
    agree.add_argument("--json", action="store_true", help="print the figures as JSON")
    agree.set_defaults(handler=cmd_agreement)
