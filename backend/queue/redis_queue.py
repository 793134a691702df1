"""The work queue across hosts (REDIS_URL): requests in Redis, rounds in `coding-backend worker`s.

The same contract as the embedded queue (files.py, scheduler.py), with Redis instead of one host's disk:

- a request is a field of the project's pending hash, so a burst coalesces into one round as the
  marker files do; it then wakes a worker with an RQ job on the queue named for its kind (``fast``
  for rounds after annotations, ``predict`` for imported tasks, ``body`` for bodies, encoding and exports),
  unless a job for that project and queue already waits or a worker is at the lane;
- the job works off the lane's requests while it holds the lane's Redis lock (storage/locks.py),
  renewed while the worker lives; a killed worker's lock expires REDIS_LOCK_SECONDS later, and the
  sweep (the server's, as on one host: sweep.py) records its round as abandoned and requests it
  again.

A job runs the round by its function path (JOB, in worker/rq_jobs.py): the queue never imports the
round.

Workers may run on any host that mounts the same MODEL_DIR; every lock of the model store is then
taken in Redis too (:func:`~backend.storage.locks.share_locks`), never with ``flock``.
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backend.config import Settings
from backend.errors import BackendError
from backend.queue.registry import LaneRegistry
from backend.queue.sweep import SWEEP_SECONDS, Sweeper
from backend.queue.work import LANE_KINDS, Lane, WorkKind
from backend.storage.layout import StoreLayout
from backend.storage.locks import redis_lock, share_locks

log = logging.getLogger(__name__)
PREFIX = "coding-backend"
QUEUE_OF = {
    WorkKind.TRAIN: "fast",
    WorkKind.PREDICT: "predict",
    WorkKind.BODY: "body",
    WorkKind.EMBED: "body",
    WorkKind.EXPORT: "body",
}
LANE_OF = {"fast": Lane.FAST, "predict": Lane.FAST, "body": Lane.BODY}
QUEUES = tuple(LANE_OF)
GRID_QUEUE = "grid"  # simulate --queue: shards of a research grid (cli/grid_jobs.py)
JOB = "backend.worker.rq_jobs.work_lane"
JOB_TIMEOUT = 6 * 3600  # a body round on a CPU takes minutes; a job still at it after hours is stuck
WOKEN_SECONDS = 24 * 3600  # a wake-up job's mark outlives any wait in a queue; the sweep repairs a lost one
SWEEP_BACKOFF_SECONDS = 30  # the sweep wakes a worker for a request at most this often (no failure loop)
STARTUP_GRACE_SECONDS = 60  # a started job takes its lane within this (imports, a look at Label Studio)


def connect(url: str) -> Any:
    """A Redis client for REDIS_URL (the `scale` extra: pip install 'label-studio-coding-backend[scale]').

    RQ is imported here too, at start: imported by the first request instead, it made Label Studio's
    3-second call to /setup time out on a loaded machine."""
    try:
        import redis
        import rq  # noqa: F401
    except ImportError:
        raise BackendError(
            "REDIS_URL needs the scale extra: pip install 'label-studio-coding-backend[scale]'"
        ) from None
    # A half-open connection fails a command instead of hanging it (a lock's renewal, say).
    return redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10, health_check_interval=30)


class RedisQueue:
    """Requests, lane locks and wake-up jobs in Redis; the model store on a path every host shares."""

    def __init__(self, connection: Any, root: Path, lock_seconds: int = 30):
        self.redis, self.lock_seconds = connection, lock_seconds
        self.layout = StoreLayout(Path(root))
        self.registry = LaneRegistry(Path(root))
        self.sweeper = Sweeper(self, self.registry)
        share_locks(connection, Path(root), lock_seconds)

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisQueue:
        server = settings.server
        return cls(connect(server.redis_url.get_secret_value()), server.model_dir, server.redis_lock_seconds)

    # --- the work queue's contract ----------------------------------------------------------------

    def request(self, project: str, kind: WorkKind) -> None:
        """Record the request and wake a worker for it, unless one is at the lane: that one takes it
        (runner.py looks again after it lets the lane go), and keeps its model loaded for it.
        Returns at once."""
        kind = WorkKind(kind)
        self.put(project, kind)
        if not self.busy(project, kind.lane):
            self.wake(project, QUEUE_OF[kind])

    def put(self, project: str, kind: WorkKind) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hset(self._pending(project), str(kind), time.time())
            pipe.sadd(self._projects(), str(project))
            pipe.execute()

    def pending(self, project: str, lane: Lane | None = None) -> list[WorkKind]:
        waiting = {field.decode() for field in self.redis.hkeys(self._pending(project))}
        kinds = LANE_KINDS[lane] if lane else tuple(WorkKind)
        return [kind for kind in kinds if kind.value in waiting]

    def take(self, project: str, lane: Lane) -> WorkKind | None:
        """Remove and return the lane's first pending request (as FileQueue.take: one at a time)."""
        for kind in LANE_KINDS[lane]:
            if self.redis.hdel(self._pending(project), str(kind)):
                return kind
        return None

    def drop(self, project: str) -> None:
        """Forget every request of a project."""
        self.redis.delete(self._pending(project))
        self.redis.srem(self._projects(), str(project))

    @contextlib.contextmanager
    def hold(self, project: str, lane: Lane) -> Iterator[bool]:
        """Try to take the lane's lock without waiting; yields whether we hold it."""
        lane_lock = redis_lock(
            self.redis,
            self._lane(project, lane),
            self.lock_seconds,
            wait=False,
            on_lost=_thread.interrupt_main,
        )
        with lane_lock as held:  # a worker whose lock expired (others take it for dead) stops its round
            yield held

    def busy(self, project: str, lane: Lane) -> bool:
        return bool(self.redis.exists(self._lane(project, lane)))

    def projects(self) -> list[str]:
        """Projects with a directory in the store or a request in Redis."""
        requested = {member.decode() for member in self.redis.smembers(self._projects())}
        return sorted(set(self.layout.projects()) | requested)

    # --- waking workers ---------------------------------------------------------------------------

    def wake(self, project: str, queue: str) -> bool:
        """Enqueue a job for the project on `queue` unless one waits there already; returns whether
        one was enqueued."""
        from rq import Queue

        mark = self._woken(project, queue)
        job_id = f"{project}-{queue}-{time.time_ns()}"
        if not self.redis.set(mark, job_id, nx=True, ex=WOKEN_SECONDS):
            return False
        Queue(queue, connection=self.redis).enqueue(
            JOB, str(project), queue, job_id=job_id, job_timeout=JOB_TIMEOUT, result_ttl=0, failure_ttl=86400
        )
        return True

    def woke(self, project: str, queue: str, job_id: str) -> None:
        """A job started: requests from now on need another job (the mark is cleared if it is ours)."""
        mark = self._woken(project, queue)
        with contextlib.suppress(Exception):
            if (self.redis.get(mark) or b"").decode() == job_id:
                self.redis.delete(mark)

    def others_wait(self, queues: tuple[str, ...]) -> bool:
        """Whether jobs wait in any of `queues` (a lingering worker yields to them)."""
        from rq import Queue

        return any(Queue(name, connection=self.redis).count for name in queues)

    def stopping(self, worker_name: str | None) -> bool:
        """Whether the RQ worker `worker_name` was told to stop. Its warm shutdown (SIGTERM: compose
        down, a rolling update) waits for the job at hand, which a lingering lane would make wait
        for WORKER_IDLE_SECONDS; RQ records the request in the worker's hash, where the job sees it."""
        from rq import Worker

        if not worker_name:
            return False
        key = Worker.redis_worker_namespace_prefix + worker_name
        return bool(self.redis.hexists(key, "shutdown_requested_date"))

    def queues_of(self, worker_name: str | None) -> tuple[str, ...]:
        """The queues the RQ worker `worker_name` takes (empty when it cannot be told)."""
        from rq import Worker

        if not worker_name:
            return ()
        worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + worker_name, connection=self.redis)
        return tuple(worker.queue_names()) if worker else ()

    # --- sweeping (sweep.py) ----------------------------------------------------------------------

    def start_sweeping(self, every: float = SWEEP_SECONDS) -> None:
        """Sweep every `every` seconds in a daemon thread (one process of all sweeps at a time)."""
        self.sweeper.start(every)

    def sweep(self) -> int:
        return self.sweeper.sweep()

    def sweeping(self, every: float) -> contextlib.AbstractContextManager[bool]:
        """The sweeper's lock, taken for one sweep (it expires if this process dies mid-sweep)."""
        return redis_lock(self.redis, f"{PREFIX}:sweeper", max(5, int(every * 3)), wait=False)

    def start_waiting(self, project: str, lane: Lane) -> int:
        """Wake a worker for each of the lane's requests whose job was lost, at most every
        SWEEP_BACKOFF_SECONDS (not after a failure in a loop); returns how many were woken."""
        woken = 0
        for queue in dict.fromkeys(QUEUE_OF[kind] for kind in self.pending(project, lane)):
            if self._job_waits(project, queue):
                continue
            if self.redis.set(self._swept(project, queue), 1, nx=True, ex=SWEEP_BACKOFF_SECONDS):
                self.redis.delete(self._woken(project, queue))
                woken += self.wake(project, queue)
        return woken

    def _job_waits(self, project: str, queue: str) -> bool:
        """Whether the job the mark names is queued, or started moments ago and not at its lane yet
        (not failed, finished, lost, or started by a worker that died before it took the lane)."""
        from rq.exceptions import NoSuchJobError
        from rq.job import Job, JobStatus

        job_id = self.redis.get(self._woken(project, queue))
        if job_id is None:
            return False
        try:
            job = Job.fetch(job_id.decode(), connection=self.redis)
        except NoSuchJobError:
            return False
        status = job.get_status()
        if status is JobStatus.STARTED:
            started = job.started_at.replace(tzinfo=UTC) if job.started_at else datetime.now(UTC)
            return (datetime.now(UTC) - started).total_seconds() < STARTUP_GRACE_SECONDS
        return status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED)

    # --- keys -------------------------------------------------------------------------------------

    @staticmethod
    def _pending(project: str) -> str:
        return f"{PREFIX}:pending:{project}"

    @staticmethod
    def _projects() -> str:
        return f"{PREFIX}:projects"

    @staticmethod
    def _lane(project: str, lane: Lane) -> str:
        return f"{PREFIX}:lane:{project}:{lane}"

    @staticmethod
    def _woken(project: str, queue: str) -> str:
        return f"{PREFIX}:woken:{project}:{queue}"

    @staticmethod
    def _swept(project: str, queue: str) -> str:
        return f"{PREFIX}:swept:{project}:{queue}"
