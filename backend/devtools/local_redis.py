"""A throwaway Redis server on this machine (Debian's redis-server): for the tests and benchmarks
of the queue across hosts. Nothing is saved; it listens on 127.0.0.1 only."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from backend.devtools.local_studio import free_port


class LocalRedis:
    """`redis-server` in `directory` on a free port, as a context manager that yields its URL."""

    def __init__(self, directory: Path):
        self.directory, self.port = Path(directory), free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def __enter__(self) -> LocalRedis:
        import redis

        self.directory.mkdir(parents=True, exist_ok=True)
        command = [shutil.which("redis-server") or "redis-server", "--port", str(self.port)]
        command += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        client, deadline = redis.Redis(port=self.port), time.monotonic() + 30
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer on port {self.port}") from None
                time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(30)
