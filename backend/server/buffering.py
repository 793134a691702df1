"""The gunicorn worker `serve` runs: waitress reads each whole request before a thread sees it.

Gunicorn's own threaded worker gives a connection a thread as soon as its first bytes arrive, so a
few clients that send a request line and then wait (slow networks, stuck proxies, an attacker) hold
every thread, and Label Studio's webhooks (one-second timeout) are lost. Waitress reads headers and
body in its event loop, hands only complete requests to its threads, and closes a connection that
stays silent. Gunicorn keeps what it is good at: forking WORKERS processes on one socket, restarting
a dead one, and stopping them gracefully. The bounds come from gunicorn's settings, which `serve`
fills from ours: `threads` (THREADS), `worker_connections` (MAX_CONNECTIONS), `keepalive`
(CLIENT_TIMEOUT: seconds a connection may stay silent, mid-request or between requests); the largest
body is the app's MAX_CONTENT_LENGTH (MAX_REQUEST_BYTES), refused with a 413 before it is read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

from gunicorn.workers.base import Worker

LOOP_SECONDS = 1.0  # one turn of the event loop at most: the master hears from the worker this often


class BufferingWorker(Worker):
    """A gunicorn worker that serves the app with waitress on the sockets gunicorn bound."""

    def run(self) -> None:
        from waitress import wasyncore
        from waitress.server import create_server

        channels: dict = {}
        server = create_server(
            self.access_logged(self.wsgi),
            map=channels,
            sockets=[listener.sock for listener in self.sockets],
            threads=self.cfg.threads,
            connection_limit=self.cfg.worker_connections,
            channel_timeout=self.cfg.keepalive,
            cleanup_interval=1,  # silent connections are closed within a second of their timeout
            max_request_body_size=self.wsgi.config["MAX_CONTENT_LENGTH"],
            asyncore_use_poll=True,  # select() stops at 1,024 file descriptors
            ident="coding-backend",
        )
        while self.alive and self.ppid == os.getppid():
            self.notify()
            wasyncore.loop(timeout=LOOP_SECONDS, map=channels, use_poll=True, count=1)
        self.drain(server, channels, wasyncore)

    def drain(self, server, channels: dict, wasyncore) -> None:
        """Stop accepting, and answer the requests already read within the graceful timeout."""
        for listener in [channel for channel in channels.values() if getattr(channel, "accepting", False)]:
            listener.del_channel()
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while any(busy(channel) for channel in channels.values()) and time.monotonic() < deadline:
            wasyncore.loop(timeout=0.1, map=channels, use_poll=True, count=1)
        server.task_dispatcher.shutdown(timeout=max(0.0, deadline - time.monotonic()))

    def access_logged(self, app: Callable) -> Callable:
        """The app, logging each request with its status and duration when gunicorn's access log is on
        (ACCESS_LOG), in the format `serve` sets (bench/bench_load.py reads the webhook's)."""
        if not self.cfg.accesslog:
            return app
        access_log = self.log.access_log

        def logged(environ: dict, start_response: Callable) -> Iterable[bytes]:
            started, status = time.perf_counter(), []

            def recording(line: str, headers: list, exc_info=None):
                status.append(line.split(" ", 1)[0])
                return start_response(line, headers, exc_info)

            body = app(environ, recording)
            try:
                yield from body
            finally:
                if hasattr(body, "close"):
                    body.close()
                micros = round((time.perf_counter() - started) * 1e6)
                query = f"?{environ['QUERY_STRING']}" if environ.get("QUERY_STRING") else ""
                request = (
                    f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}{query} {environ['SERVER_PROTOCOL']}"
                )
                answered = status[0] if status else "-"
                access_log.info('%s "%s" %s %sus', environ.get("REMOTE_ADDR", "-"), request, answered, micros)

        return logged


def busy(channel) -> bool:
    """Whether a connection has a request in hand or an answer still to send."""
    return bool(getattr(channel, "requests", None) or getattr(channel, "total_outbufs_len", 0))
