"""The work queue across hosts, against a real Redis server: the embedded queue's contract
(coalescing, one worker per lane, repair of abandoned work) with requests and locks in Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from rq import Queue

from backend.queue.redis_queue import RedisQueue
from backend.queue.registry import LaneRegistry
from backend.queue.work import Lane, WorkKind
from backend.storage.locks import file_lock, is_locked
from backend.storage.state import LaneStatus, StateStore
from tests.helpers import wait_for


@pytest.fixture
def queue(redis_connection, tmp_path) -> RedisQueue:
    return RedisQueue(redis_connection, tmp_path / "models", lock_seconds=5)


def jobs(queue: RedisQueue, name: str) -> list:
    return Queue(name, connection=queue.redis).get_jobs()


def test_a_burst_of_requests_is_one_request_and_wakes_one_job_per_queue(queue):
    for _ in range(5):
        queue.request("7", WorkKind.TRAIN)
    queue.request("7", WorkKind.PREDICT)
    queue.request("7", WorkKind.BODY)
    queue.request("7", WorkKind.EMBED)
    assert queue.pending("7") == [WorkKind.TRAIN, WorkKind.PREDICT, WorkKind.BODY, WorkKind.EMBED]
    assert queue.pending("7", Lane.FAST) == [WorkKind.TRAIN, WorkKind.PREDICT]
    assert [len(jobs(queue, name)) for name in ("fast", "predict", "body")] == [1, 1, 1]
    assert jobs(queue, "fast")[0].args == ("7", "fast")
    assert queue.projects() == ["7"]


def test_a_request_after_its_job_started_wakes_another_job(queue):
    queue.request("7", WorkKind.TRAIN)
    first = jobs(queue, "fast")[0]
    queue.woke("7", "fast", first.id)  # the job started: it will not see what comes after its take
    queue.request("7", WorkKind.TRAIN)
    assert len(jobs(queue, "fast")) == 2
    queue.woke("7", "fast", first.id)  # a late start of the first job leaves the second's mark
    queue.request("7", WorkKind.TRAIN)
    assert len(jobs(queue, "fast")) == 2


def test_a_request_for_a_lane_a_worker_is_at_is_left_to_that_worker(queue):
    with queue.hold("7", Lane.FAST):
        queue.request("7", WorkKind.TRAIN)  # the lingering worker takes it, its model still loaded
        assert queue.pending("7") == [WorkKind.TRAIN] and jobs(queue, "fast") == []
    queue.request("7", WorkKind.TRAIN)
    assert len(jobs(queue, "fast")) == 1


def test_requests_are_taken_one_at_a_time_in_lane_order_and_dropped_with_their_project(queue):
    queue.put("7", WorkKind.PREDICT)
    queue.put("7", WorkKind.TRAIN)
    assert queue.take("7", Lane.FAST) is WorkKind.TRAIN
    assert queue.take("7", Lane.FAST) is WorkKind.PREDICT
    assert queue.take("7", Lane.FAST) is None
    queue.put("8", WorkKind.BODY)
    queue.drop("8")
    assert queue.pending("8") == [] and queue.projects() == ["7"]


def test_one_holder_per_lane_and_the_lock_is_renewed_while_held(queue):
    with queue.hold("7", Lane.FAST) as held:
        assert held and queue.busy("7", Lane.FAST) and not queue.busy("7", Lane.BODY)
        with queue.hold("7", Lane.FAST) as again:
            assert not again
        ttl = lambda: queue.redis.pttl("coding-backend:lane:7:fast")  # noqa: E731
        wait_for(lambda: ttl() > 4000 and ttl() < 4500 and ttl(), 10, "a renewal to pass")  # expiry 5 s
        wait_for(lambda: ttl() > 4500, 10, "the lock to be renewed")
    assert not queue.busy("7", Lane.FAST)


HOLDER = textwrap.dedent(
    """
    import sys, time, redis
    from backend.queue.work import Lane
    from backend.queue.redis_queue import RedisQueue
    queue = RedisQueue(redis.Redis.from_url(sys.argv[1]), sys.argv[2], lock_seconds=5)
    with queue.hold("7", Lane.FAST) as held:
        print("held" if held else "refused", flush=True)
        time.sleep(600)
    """
)


def test_a_killed_holders_lock_expires_and_the_sweep_requests_its_round_again(queue, redis_url, tmp_path):
    registry = LaneRegistry(tmp_path / "models")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, redis_url, str(tmp_path / "models")], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    registry.started("7", WorkKind.TRAIN)  # the worker was mid-round
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(10)

    assert queue.busy("7", Lane.FAST)  # until it expires, nobody can tell a dead holder from a slow one
    assert queue.sweep() == 0 and queue.pending("7") == []
    wait_for(lambda: not queue.busy("7", Lane.FAST), 15, "the dead worker's lock to expire")
    assert queue.sweep() == 0  # requested again, and that request woke a worker
    assert queue.pending("7") == [WorkKind.TRAIN]  # requested again: no request is lost
    lane = StateStore(queue.layout.project("7")).read().lane(Lane.FAST)
    assert lane.status is LaneStatus.FAILED and "ended without finishing" in lane.error
    assert [job.args for job in jobs(queue, "fast")] == [("7", "fast")]


def test_the_sweep_wakes_a_worker_for_a_request_whose_job_was_lost(queue):
    queue.request("7", WorkKind.BODY)
    assert queue.sweep() == 0  # its job waits
    Queue("body", connection=queue.redis).empty()  # a flushed queue, a job deleted by hand
    assert queue.sweep() == 1
    assert len(jobs(queue, "body")) == 1


def test_the_stores_locks_are_redis_locks_once_shared(queue, tmp_path):
    state_lock = queue.layout.project("7").state_lock
    with file_lock(state_lock) as held:
        assert held and is_locked(state_lock)
        assert queue.redis.exists("coding-backend:lock:7/.state-lock")
        with file_lock(state_lock, wait=False) as again:
            assert not again
    assert not is_locked(state_lock)
    outside = tmp_path / "elsewhere.lock"
    with file_lock(outside) as held:  # not under the shared store: this host's flock
        assert held and not queue.redis.keys("*elsewhere*")


def test_a_holder_whose_lock_expired_is_told_so_it_can_stop(redis_connection):
    """A holder paused past the expiry (others took it for dead): its renewal fails and `on_lost` runs;
    the lane's holder then stops its round (RedisQueue.hold interrupts the worker's main thread)."""
    import threading

    from backend.storage.locks import redis_lock

    lost = threading.Event()
    with redis_lock(redis_connection, "coding-backend:lane:7:fast", 5, wait=False, on_lost=lost.set) as held:
        assert held
        redis_connection.delete("coding-backend:lane:7:fast")  # as an expiry would
        assert lost.wait(10)
