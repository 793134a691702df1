"""What an RQ worker runs (`coding-backend worker`, REDIS_URL): the jobs are imported by name.

A job is a wake-up call, never the work itself: it works off whatever its project's lane has pending
at the time (worker/redis_queue.py), so a burst of requests is one round, and a job that finds the
lane held or empty returns at once.
"""

from __future__ import annotations

import logging

from backend.config import load_settings
from backend.worker.redis_queue import LANE_OF, RedisQueue

log = logging.getLogger("backend.worker")


def work_lane(project: str, queue_name: str) -> int:
    """Work off the project's lane that `queue_name` wakes; lingering (fast lane) ends when jobs wait
    in the queues of that lane."""
    from rq import get_current_job

    from backend.worker.lane import run_lane

    settings = load_settings()
    queue = RedisQueue.from_settings(settings)
    job = get_current_job()
    if job is not None:
        queue.woke(project, queue_name, job.id)
    lane = LANE_OF[queue_name]
    lane_queues = tuple(name for name, of in LANE_OF.items() if of is lane)
    return run_lane(project, lane, settings, queue, queue, lambda: queue.others_wait(lane_queues))
