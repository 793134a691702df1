"""The work queue, apart from what the work is: requests, taking them, holding a lane, the one sweep
and repair, the lane registry, worker slots and RQ jobs.

The HTTP layer asks it for work (`interface.WorkQueue`); a worker takes the work off a lane
(`runner.py`) and records its lifecycle (`registry.py`). What a round does lives in `worker/`, which
imports this package, never the reverse: the queue starts a round by its command line
(``python -m backend.worker``) or its RQ function path (``backend.worker.rq_jobs.work_lane``).
"""
