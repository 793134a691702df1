"""What an RQ worker runs (`coding-backend worker`, REDIS_URL): the jobs are imported by name.

A job is a wake-up call, never the work itself: it works off whatever its project's lane has pending
at the time (queue/redis_queue.py enqueues it by its name, JOB), so a burst of requests is one round,
and a job that finds the lane held or empty returns at once.
"""

from __future__ import annotations

from backend.config import load_settings
from backend.queue.redis_queue import LANE_OF, QUEUES, RedisQueue


def work_lane(project: str, queue_name: str) -> int:
    """Work off the project's lane that `queue_name` wakes; lingering (fast lane) ends as soon as a job
    waits in any queue this worker takes (another project's round, this project's body), or the
    worker is told to stop, and a busy lane's turn ends after TURN_SECONDS when a job waits: its
    requests stay, and the sweep wakes a job for them behind the ones that waited."""
    from rq import get_current_job

    from backend.queue.runner import TURN_SECONDS, Turns
    from backend.worker.lane import run_lane

    settings = load_settings()
    queue = RedisQueue.from_settings(settings)
    job = get_current_job()
    if job is not None:
        queue.woke(project, queue_name, job.id)
    worker = job.worker_name if job else None
    taken = queue.queues_of(worker) or QUEUES
    others_wait = lambda: queue.others_wait(taken)  # noqa: E731
    turns = Turns(lambda: queue.stopping(worker) or others_wait(), TURN_SECONDS, others_wait)
    return run_lane(project, LANE_OF[queue_name], settings, queue, turns)
