"""The research grid through RQ (`simulate --queue N`, REDIS_URL): each shard of the grid is a job on
the `grid` queue that `coding-backend worker --queues grid` runs on any host that sees --data and
--out; `simulate --report OUT` merges what they wrote, as after a SLURM job array."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

JOB = "backend.cli.grid_jobs.run_shard"


def enqueue_shards(connection: Any, argv: Sequence[str], count: int) -> list[str]:
    """One job per shard of the grid `simulate argv` runs; returns their ids."""
    from rq import Queue

    from backend.queue.redis_queue import GRID_QUEUE

    queue = Queue(GRID_QUEUE, connection=connection)
    jobs = [
        queue.enqueue(JOB, [*argv, "--shard", f"{index}/{count}"], job_timeout=-1, result_ttl=86400)
        for index in range(1, count + 1)
    ]
    return [job.id for job in jobs]


def run_shard(argv: list[str]) -> int:
    """Run `coding-backend simulate` with `argv` (it names its shard); a failure fails the job."""
    from backend.cli import main

    code = main(["simulate", *argv])
    if code != 0:
        raise RuntimeError(f"simulate {' '.join(argv)} exited with status {code} (see the worker's log)")
    return code
