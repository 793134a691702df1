"""Background work: the queue the HTTP layer asks, the processes that work it off, and the jobs.

Data flows one way: a webhook asks the queue for work (`queue.py`, `scheduler.py`); a worker process
takes it (`runner.py`, `__main__.py`) and runs a job (`jobs/`) that reads labels from Label Studio,
trains with `learning`, stores with `storage` and writes back with `studio`.
"""
