"""A worker at one project's lane, wherever it runs: the embedded worker process
(``python -m backend.worker``) and the RQ job (worker/rq_jobs.py) both come here."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil

from backend.config import Settings
from backend.queue.interface import LaneQueue
from backend.queue.registry import LaneRegistry
from backend.queue.runner import YIELD_CHECK_SECONDS, Lingering, Throttle, Turns, work_off
from backend.queue.work import Lane
from backend.studio.client import StudioClient, StudioError
from backend.worker.labels import KeptLabels
from backend.worker.wiring import lingering_seconds, project_work

log = logging.getLogger("backend.worker")
# Label Studio answers coders at niceness 0: on a shared CPU its requests go first, the fast lane's
# rounds next (the load test: /next p50 0.46 s without the backend, 1.9 s beside a fast lane at 0;
# at 10 rather than 5, twenty fast coders' /next p99 was no better, 1.68x without against 1.61x,
# and the rounds fewer, 80 against 118: Label Studio's one process is held up by its own work, not
# by the rounds' share of the CPU), the body's fine-tuning and encoding last, at the lowest
# priority there is: at 10 two body lanes fine-tuning took enough of two cores that a fast round at
# 100,000 segments took 5-6 times its time on an idle machine (docs/benchmarks.md, "100,000
# segments"); alone, it has the CPU anyway
NICENESS = {Lane.FAST: 5, Lane.BODY: 19}


def run_lane(
    project: str,
    lane: Lane,
    settings: Settings,
    queue: LaneQueue,
    turns: Turns,
    kept: KeptLabels | None = None,
) -> int:
    """Work off a project's lane (the embedded worker process's and the RQ job's one way to do it):
    `queue` is what the lane's requests and lock are taken from, and where jobs ask for more work;
    `turns` says when others wait for this worker: lingering ends, and once its turn is over the
    writing of a queue head's rest stops (past the coders' floor) and the worker leaves (runner.py);
    `kept` is what the worker process read of the projects it worked at before (worker/labels.py)."""
    lower_priority(lane)
    try:
        studio = StudioClient(settings.server.label_studio_url, settings.server.api_key())
        if not project_exists(studio, project):
            forget_project(queue, project)
            return 0
    except Exception as exc:
        LaneRegistry(settings.server.model_dir).failed(project, lane, str(exc))
        return 1
    look = Throttle(YIELD_CHECK_SECONDS)  # a look at every project's requests costs a directory scan
    work = project_work(project, settings, studio, queue, lambda: look.due() and turns.over(), kept)
    lingering = Lingering(
        lingering_seconds(settings, lane), work.when_idle, settings.loop.body_retrain_idle_seconds, turns
    )
    work_off(queue, project, work.run, lane, lingering, begin=work.at_work)
    return 0


def lower_priority(lane: Lane) -> None:
    """Coders first: this process yields the CPU to Label Studio (NICENESS), never raised back."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, max(os.getpriority(os.PRIO_PROCESS, 0), NICENESS[lane]))


def project_exists(studio: StudioClient, project: str) -> bool:
    """Whether Label Studio knows the project (a webhook may name any id)."""
    try:
        studio.label_config(int(project))
    except StudioError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def forget_project(queue: LaneQueue, project: str) -> None:
    """Drop the requests of a project Label Studio does not know, and its directory if nothing was trained."""
    log.warning("project %s does not exist in Label Studio: its requests are dropped", project)
    queue.drop(project)
    directory = queue.layout.project(project)
    if not directory.version_dirs():
        shutil.rmtree(directory.path, ignore_errors=True)
