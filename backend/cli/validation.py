"""`validate`: draw a blind validation sample of a project's uncoded segments, or release one into
training (backend/worker/validation.py); its estimates appear in /metrics, /status and MLflow."""

from __future__ import annotations

import argparse
import secrets

from backend.cli.errors import UsageError
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

    if args.release and args.size is not None:
        raise UsageError("give either --size (draw a sample) or --release (train on it), not both")
    if not args.release and args.size is None:
        raise UsageError("--size N: how many uncoded segments to sample (or --release)")
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
