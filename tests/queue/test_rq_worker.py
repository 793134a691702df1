"""`coding-backend worker`'s RQ worker stops within seconds, against a real Redis server: RQ's warm
shutdown waits for the job at hand, so a lingering lane must see the stop (RedisQueue.stopping), and
rq 3.0.0 with redis-py 8.2.0 then hung up to a minute in its own teardown (queue/rq_worker.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import redis

from backend.queue.redis_queue import RedisQueue
from backend.queue.rq_worker import LISTEN_SECONDS
from tests.helpers import wait_for

LINGERING_JOB = textwrap.dedent(
    """
    import time
    import redis
    from rq import get_current_job
    from backend.queue.redis_queue import RedisQueue

    def linger(url, model_dir, out):
        queue = RedisQueue(redis.Redis.from_url(url), model_dir)
        worker = get_current_job().worker_name
        open(out, "w").write("lingering")
        deadline = time.monotonic() + 60  # WORKER_IDLE_SECONDS, or far longer
        while time.monotonic() < deadline:
            if queue.stopping(worker):
                open(out, "w").write("told to stop")
                return
            time.sleep(0.1)
    """
)
WORKER = textwrap.dedent(
    """
    import sys
    import redis
    sys.path.insert(0, sys.argv[2])
    from backend.queue.rq_worker import StoppableWorker
    StoppableWorker(["linger"], connection=redis.Redis.from_url(sys.argv[1])).work()
    """
)


def test_a_lingering_job_sees_its_worker_told_to_stop_and_the_worker_exits(
    redis_connection, redis_url, tmp_path
):
    """Five stops in a row: with RQ's own listening the teardown hung in about one of four."""
    from rq import Queue

    queue = RedisQueue(redis_connection, tmp_path / "models")
    (tmp_path / "lingering.py").write_text(LINGERING_JOB)
    for attempt in range(5):
        out = tmp_path / f"job-{attempt}.txt"
        Queue("linger", connection=redis_connection).enqueue(
            "lingering.linger", redis_url, str(tmp_path / "models"), str(out)
        )
        with open(tmp_path / "worker.log", "a") as log:
            worker = subprocess.Popen(
                [sys.executable, "-c", WORKER, redis_url, str(tmp_path)], stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_for(lambda o=out: o.exists() and o.read_text() == "lingering", 60, "the job to start")
            assert not queue.stopping(None)
            worker.send_signal(signal.SIGTERM)
            wait_for(lambda o=out: o.read_text() == "told to stop", 15, "the job to see the stop")
            assert worker.wait(10) == 0, (tmp_path / "worker.log").read_text()[-3000:]
        finally:
            worker.kill()


def pubsub_thread(redis_url: str, listen_seconds: float):
    """A subscribed pubsub listening in a thread, as RQ's worker has one."""
    pubsub = redis.Redis.from_url(redis_url).pubsub()
    pubsub.subscribe(**{"rq:pubsub:test": lambda message: None})
    return pubsub, pubsub.run_in_thread(sleep_time=listen_seconds, daemon=True)


def test_rqs_unsubscribe_before_stop_hangs_a_listening_thread_for_its_listening_time(redis_url):
    """The bug, as RQ's `unsubscribe` meets it: unsubscribed, the listening thread waits its whole
    `sleep_time` for a subscription before it sees the stop; in one-second turns it stops at once."""
    for listen_seconds, still_listening in ((60, True), (LISTEN_SECONDS, False)):
        pubsub, thread = pubsub_thread(redis_url, listen_seconds)
        wait_for(lambda p=pubsub: p.subscribed, 10, "the subscription")
        pubsub.unsubscribe()
        wait_for(lambda p=pubsub: not p.subscribed, 10, "the unsubscription")
        thread.stop(timeout=3 * LISTEN_SECONDS)
        assert thread.is_alive() is still_listening, listen_seconds
        thread.stop(timeout=0)  # a daemon thread: left to end with the test process
