"""The RQ worker of `coding-backend worker`, with the one rq/redis-py bug we met worked around.

rq 3.0.0 with redis-py 8.2.0: a warm shutdown (SIGTERM: compose down, a rolling update) hung for up
to a minute after its job had ended. RQ's `unsubscribe` unsubscribes the worker's pubsub, then stops
its listening thread; that thread's next `get_message(timeout=60)` waits the whole 60 s for a
subscription that never comes, and `PubSubWorkerThread.stop()` joins it without a timeout (py-spy:
the main thread in `Thread.join` under `BaseWorker.unsubscribe`). The e2e story's RQ workers took
60 s each to stop. Listening in one-second turns bounds the stop at a second
(tests/queue/test_rq_worker.py shows the bug and the fix).
"""

from __future__ import annotations

from rq import Worker

LISTEN_SECONDS = 1.0  # RQ's own: 60


class StoppableWorker(Worker):
    def subscribe(self) -> None:
        """RQ's subscribe (rq/worker/base.py), listening in LISTEN_SECONDS turns."""
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=LISTEN_SECONDS, daemon=True, exception_handler=self._pubsub_exception_handler
        )
