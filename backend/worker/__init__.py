"""The active-learning rounds: what a worker does with the work it takes from the queue.

Data flows one way: a webhook asks the queue for work (`backend/queue/`); a worker process
(`__main__.py`, or an RQ job: `rq_jobs.py`) takes it at its lane (`lane.py`) and runs a job (`jobs/`)
that reads labels from Label Studio, trains with `learning`, stores with `storage` and writes back
with `studio`.
"""
