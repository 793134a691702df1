"""A worker process's loop: take a lane's requests one at a time while holding the lane's lock."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from backend.queue.interface import LaneQueue
from backend.queue.work import Lane, WorkKind

log = logging.getLogger(__name__)
LINGER_POLL_SECONDS = 0.2
YIELD_CHECK_SECONDS = 2.0
# A busy fast-lane worker keeps its lane this long at least, and then until another project's fast
# lane has waited this long for a slot: small projects' rounds take seconds, and a worker that ended
# its turn after every round of the large project (30 s, whoever waited) left its twenty coders
# 41 "no more tasks" in ten minutes (docs/benchmarks.md, "Load")
TURN_SECONDS = 60.0


class Throttle:
    """True at most once every `seconds` (a look at every project's requests costs a directory scan)."""

    def __init__(self, seconds: float):
        self.seconds, self.last = seconds, float("-inf")

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True


@dataclass(frozen=True)
class Turns:
    """When a worker gives its lane up for others: lingering ends when `yield_when` says others wait
    for the worker's slot; a worker that always has more requests ends its turn after a round once
    it held the lane for `seconds` and `over` says others wait. Its requests stay for the next
    worker in turn (Scheduler.work_in_turn moves the process to a lane that waited)."""

    yield_when: Callable[[], bool] | None = None
    seconds: float = float("inf")
    over: Callable[[], bool] = lambda: False


@dataclass(frozen=True)
class Lingering:
    """How long a worker stays at its lane once the requests are done (`seconds` idle: the next
    annotation's round starts at once, without a new process loading a model); `on_idle` runs once
    per quiet spell of `idle_after` seconds; `turns` says when it leaves earlier, for others."""

    seconds: float = 0.0
    on_idle: Callable[[], None] | None = None
    idle_after: float = float("inf")
    turns: Turns = Turns()


def work_off(
    queue: LaneQueue,
    project: str,
    handle: Callable[[WorkKind], None],
    lane: Lane = Lane.FAST,
    lingering: Lingering = Lingering(),
    begin: Callable[[WorkKind], object] = lambda kind: None,
) -> int:
    """Run `handle(kind)` for the lane's pending requests while we hold its lock; returns rounds run.

    `begin(kind)` marks the lane at work before the request leaves the queue, so that no moment
    between two rounds shows the lane idle with nothing pending (`/metrics` would read it as
    settled: a test on a slow CI did, and the round after it landed a new version).

    While `lingering`, the worker keeps the lock (and whatever `handle` keeps in memory) and polls
    for new requests. After releasing the lock we look again: a request that arrived just as we
    finished (its own child found the lock still held and gave up) is picked up here, not lost.
    """
    rounds, look = 0, Throttle(YIELD_CHECK_SECONDS)
    linger, on_idle, idle_after = lingering.seconds, lingering.on_idle, lingering.idle_after

    def others_wait() -> bool:
        yield_when = lingering.turns.yield_when
        return yield_when is not None and look.due() and yield_when()

    while queue.pending(project, lane):
        with queue.hold(project, lane) as held:
            if not held:
                return rounds  # the holder will see the markers
            idle_since = turn_since = time.monotonic()
            idle_handled = False
            while True:
                idle = time.monotonic() - idle_since
                if waiting := queue.pending(project, lane):
                    begin(waiting[0])
                if waiting and (kind := queue.take(project, lane)):
                    try:
                        handle(kind)
                    except BaseException:
                        queue.put(project, kind)  # the round could not even be recorded (a full disk)
                        raise
                    rounds += 1
                    idle_since, idle_handled = time.monotonic(), False
                    if idle_since - turn_since >= lingering.turns.seconds and lingering.turns.over():
                        return rounds  # its turn is over; the requests left wait for the next worker
                elif idle < linger and not others_wait():
                    if on_idle and not idle_handled and idle >= idle_after:
                        idle_handled = True
                        on_idle()
                    time.sleep(LINGER_POLL_SECONDS)
                else:
                    break
    return rounds
