"""`validate`: draw a blind validation sample of a project's uncoded segments, or release one into
training (backend/worker/validation.py); its estimates appear in /metrics, /status and MLflow.
`autocode`: hand codes over to the model where those estimates reach the lead's targets, or take
them back (backend/worker/autocode.py)."""

from __future__ import annotations

import argparse
import secrets
import sys

from backend.cli.errors import UsageError, comma_list
from backend.config import Settings

EVERY = 5


class MarkerQueue:
    """Requests left as marker files for the server's sweep to start a worker: the command starts
    none itself (it may run beside the server, e.g. with `docker compose exec`)."""

    def __init__(self, settings: Settings):
        from backend.queue.files import FileQueue

        self.files = FileQueue(settings.server.model_dir)

    def request(self, project: str, kind) -> None:
        self.files.put(project, kind)


def project_context(settings: Settings, project: str):
    from backend.storage.state import StateStore
    from backend.storage.versions import ModelStore
    from backend.studio.client import StudioClient
    from backend.worker.context import ProjectContext

    if not project.isdigit():
        raise UsageError(f"--project must be a Label Studio project id (a number), got {project!r}")
    server = settings.server
    if server.redis_url:
        from backend.queue.redis_queue import RedisQueue

        queue = RedisQueue.from_settings(settings)
    else:
        queue = MarkerQueue(settings)
    store = ModelStore(server.model_dir, server.keep_versions)
    studio = StudioClient(server.label_studio_url, server.api_key())
    return ProjectContext(
        project, studio, StateStore(store.layout.project(project)), store, queue, settings.loop
    )


def cmd_validate(settings: Settings, args: argparse.Namespace) -> int:
    from backend.worker.validation import draw, release

    if sum((args.release, args.size is not None, args.width is not None)) != 1:
        raise UsageError(
            "give one of --size N (segments to sample), --width W (a sample whose 95 % intervals are at "
            "most W wide) or --release (train on the sample)"
        )
    if args.width is not None:
        from backend.learning.validation import size_for_width

        if not 0 < args.width < 1:
            raise UsageError(f"--width {args.width}: an interval's width lies between 0 and 1, e.g. 0.1")
        args.size = size_for_width(args.width)
        print(
            f"--width {args.width}: {args.size} segments give a share of the sample (a prevalence) a 95 % "
            "interval at most that wide; precision and recall rest on fewer, so theirs are wider"
        )
    ctx = project_context(settings, args.project)
    if args.release:
        sample = release(ctx)
        print(
            f"project {ctx.project}: the validation sample of {len(sample.task_ids)} segments is released "
            "into training from the next round on; its estimates are no longer held out"
        )
        return 0
    seed = secrets.randbelow(2**31) if args.seed is None else args.seed
    sample = draw(ctx, args.size, seed, args.every)
    print(
        f"project {ctx.project}: {len(sample.task_ids)} of {sample.drawn_from} uncoded segments drawn "
        f"(seed {sample.seed}); the next round serves them without a suggestion, one task in "
        f"{sample.every}, and keeps them out of training until `validate --release`"
    )
    return 0


def print_autocoded(settings: Settings, project: str) -> None:
    """The codes handed over: which version decides them, on how many segments, what the last
    re-decision changed, and whether the code is suspended."""
    from backend.worker.autocode import store_of

    kept = store_of(project_context(settings, project)).read().codes
    if not kept:
        print(f"project {project}: no code is handed over to the model")
    for code, handed in kept.items():
        at = handed.handed_version or "an earlier version"
        print(
            f"{code}: decided by {handed.version} on {len(handed.task_ids)} uncoded segments "
            f"({handed.positives} with the code); handed over at {at} "
            f"(precision ≥ {handed.min_precision}, recall ≥ {handed.min_recall}), "
            f"{handed.coded_since} coded by coders since"
        )
        if handed.redecided is not None:
            print(f"  {handed.redecided.describe()}")
        if handed.suspended:
            print(f"  SUSPENDED: {handed.suspended}")


def cmd_autocode(settings: Settings, args: argparse.Namespace) -> int:
    from backend.worker.autocode import Targets, autocode, undo

    codes = comma_list(args.codes)
    if args.status:
        print_autocoded(settings, args.project)
        return 0
    if args.undo:
        taken = undo(project_context(settings, args.project), codes)
        print(f"project {args.project}: taken back from the model: {', '.join(taken)}")
        return 0
    if not codes:
        raise UsageError("--codes a,b: the codes to hand over to the model")
    targets = Targets(args.min_precision, args.min_recall)
    verdicts = autocode(project_context(settings, args.project), codes, targets)
    for found in verdicts:
        if found.accepted:
            print(f"{found.code}: handed over to the model (the lower bounds reach the targets)")
            continue
        more = (
            f"about {found.more_segments} more coded validation segments would likely close the gap"
            if found.more_segments is not None
            else "more validation segments would not close the gap"
        )
        print(f"{found.code}: refused: {'; '.join(found.short)}; {more}", file=sys.stderr)
    return 0 if all(found.accepted for found in verdicts) else 3


def add_commands(commands) -> None:
    validate = commands.add_parser(
        "validate",
        help="draw a blind validation sample of the uncoded segments (or --release it into training)",
        description="Draw a uniform random sample of the segments nobody coded yet. Coders get them "
        "without a suggestion, interleaved with the active-learning queue; their codes are kept out of "
        "training and give per-code precision, recall, F1 and corpus prevalence with 95 %% intervals "
        "(/metrics, /status, MLflow). A new sample replaces the old one.",
    )
    validate.add_argument("--project", required=True, help="the Label Studio project id")
    validate.add_argument("--size", type=int, help="segments to sample (e.g. 150)")
    validate.add_argument(
        "--width", type=float, help="instead of --size: the widest 95 %% interval of a share (e.g. 0.1)"
    )
    validate.add_argument("--seed", type=int, help="the draw's seed (default: a random one, recorded)")
    validate.add_argument(
        "--every",
        type=int,
        default=EVERY,
        help="serve one validation segment in this many of the queue (1: all first; default %(default)s)",
    )
    validate.add_argument(
        "--release", action="store_true", help="let training use the sample's codes from now on"
    )
    validate.set_defaults(handler=cmd_validate)
    auto = commands.add_parser(
        "autocode",
        help="hand codes over to the model where the validation sample shows it reaches your targets",
        description="For each code, the lower bounds of the 95 %% intervals of the model's precision and "
        "recall on the blind validation sample must reach the targets; then the serving version's "
        "decision becomes the code of every segment no coder has coded, kept by the backend with its "
        "provenance (not in Label Studio, never trained on). A code below target is refused, naming the "
        "figures and roughly how many more validation segments would close the gap. Each later version "
        "re-decides the codes handed over while its own estimate still reaches the targets; otherwise the "
        "code is suspended and keeps its last decisions (--status shows which). Exit status 3: a "
        "code was refused (the others were handed over).",
    )
    auto.add_argument("--project", required=True, help="the Label Studio project id")
    auto.add_argument("--codes", help="the codes, comma-separated (with --undo: default all)")
    auto.add_argument("--min-precision", type=float, default=0.9, help="target for precision (%(default)s)")
    auto.add_argument("--min-recall", type=float, default=0.8, help="target for recall (%(default)s)")
    auto.add_argument(
        "--undo",
        action="store_true",
        help="take the codes back from the model altogether (their re-decisions too)",
    )
    auto.add_argument(
        "--status",
        action="store_true",
        help="show the codes handed over: deciding version, last re-decision, suspension",
    )
    auto.set_defaults(handler=cmd_autocode)
