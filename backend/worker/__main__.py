"""The worker process: ``python -m backend.worker PROJECT [fast|body]``.

Started by the scheduler (never inside a request); works off the project's pending requests in one
lane, then lingers (fast lane) for the next annotation before it exits.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys

from backend.config import load_settings
from backend.config.logs import setup_logging
from backend.storage.state import Lane
from backend.studio.client import StudioClient, StudioError
from backend.worker.registry import LaneRegistry
from backend.worker.runner import work_off
from backend.worker.scheduler import Scheduler
from backend.worker.wiring import lingering_seconds, project_work

log = logging.getLogger("backend.worker")
BACKGROUND_NICENESS = 10


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    lanes = [lane.value for lane in Lane]
    if len(args) not in (1, 2) or (len(args) == 2 and args[1] not in lanes):
        print(f"usage: python -m backend.worker PROJECT [{'|'.join(lanes)}]", file=sys.stderr)
        return 2
    project, lane = args[0], Lane(args[1] if len(args) == 2 else "fast")
    if lane is Lane.BODY:  # background work: the coders' fast lane gets the CPU first
        os.setpriority(os.PRIO_PROCESS, 0, BACKGROUND_NICENESS)
    settings = load_settings()
    setup_logging(settings.server.log_level)
    scheduler = Scheduler(settings.server.model_dir, settings.server.max_worker_processes)
    try:
        studio = StudioClient(settings.server.label_studio_url, settings.server.api_key())
        if not project_exists(studio, project):
            forget_project(scheduler, project)
            return 0
    except Exception as exc:
        LaneRegistry(settings.server.model_dir).failed(project, lane, str(exc))
        return 1
    work = project_work(project, settings, studio, scheduler)
    work_off(
        scheduler.queue,
        project,
        work.run,
        lane=lane,
        linger=lingering_seconds(settings, lane),
        on_idle=work.when_idle,
        idle_after=settings.loop.body_retrain_idle_seconds,
        yield_when=lambda: scheduler.others_wait_for_a_slot(project),
    )
    return 0


def project_exists(studio: StudioClient, project: str) -> bool:
    """Whether Label Studio knows the project (a webhook may name any id)."""
    try:
        studio.label_config(int(project))
    except StudioError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def forget_project(scheduler: Scheduler, project: str) -> None:
    """Drop the requests of a project Label Studio does not know, and its directory if nothing was trained."""
    log.warning("project %s does not exist in Label Studio: its requests are dropped", project)
    directory = scheduler.queue.layout.project(project)
    for kind in scheduler.queue.pending(project):
        directory.marker(kind).unlink(missing_ok=True)
    if not directory.version_dirs():
        shutil.rmtree(directory.path, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
