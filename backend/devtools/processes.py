"""The backend as a child process: for the demo, the end-to-end and fault tests, and the benchmarks
(one way to do it for all of them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


class BackendProcess:
    """`coding-backend serve` under gunicorn, as a child process group (its workers die with it)."""

    def __init__(
        self,
        port: int,
        env: dict[str, str],
        auth: tuple[str, str],
        *,
        workers: int = 1,
        log_path: Path | None = None,
    ):
        self.port, self.auth, self.workers, self.log_path = port, auth, workers, log_path
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**env, "BACKEND_URL": self.url}  # Label Studio is given this URL: its webhook gets auth
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> BackendProcess:
        """Start the server and wait until it answers /health."""
        command = [
            sys.executable,
            "-m",
            "backend.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        log = open(self.log_path, "a") if self.log_path else None  # noqa: SIM115 - the child writes it
        self.process = subprocess.Popen(
            command,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
            start_new_session=True,
        )
        if log:
            log.close()
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.process.poll() is not None:
                tail = self.log_path.read_text()[-3000:] if self.log_path else "(see its log above)"
                raise RuntimeError(f"the backend exited during start-up: {tail}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the backend did not answer /health within {timeout:.0f} s")
            time.sleep(0.3)
        return self

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def metrics(self) -> dict:
        """Every project's /metrics entry."""
        return httpx.get(f"{self.url}/metrics", auth=self.auth, timeout=30).json()["projects"]

    def stop(self) -> None:
        """SIGTERM the server and its workers; SIGKILL them when they linger."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(30)

    def kill(self) -> None:
        """SIGKILL the server and every worker it started, as a power cut would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
