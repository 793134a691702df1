"""The backend as a child process: for the demo, the end-to-end and fault tests, and the benchmarks
(one way to do it for all of them)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
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
        cwd: Path | None = None,
    ):
        self.port, self.auth, self.workers, self.log_path, self.cwd = port, auth, workers, log_path, cwd
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**env, "BACKEND_URL": self.url}  # Label Studio is given this URL: its webhook gets auth
        self.process: subprocess.Popen | None = None

    @property
    def command(self) -> list[str]:
        """`serve` as this process runs it."""
        host = ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]
        return [sys.executable, "-m", "backend.cli", "serve", *host]

    def start(self, timeout: float = 120) -> BackendProcess:
        """Start the server and wait until it answers /health."""
        log = open(self.log_path, "a") if self.log_path else None  # noqa: SIM115 - the child writes it
        if self.cwd is not None:
            Path(self.cwd).mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=self.cwd,
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
        terminate(self.process, 30, self.kill)

    def kill(self) -> None:
        """SIGKILL the server and every worker it started, as a power cut would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)


class WorkerProcess:
    """`coding-backend worker` (REDIS_URL) as a child process group, in a working directory of its own."""

    def __init__(self, env: dict[str, str], queues: str, cwd: Path, log_path: Path):
        self.env, self.queues, self.cwd, self.log_path = env, queues, Path(cwd), Path(log_path)
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        self.cwd.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "backend.cli", "worker", "--queues", self.queues],
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def stop(self) -> None:
        """SIGTERM: RQ finishes the job at hand (a warm shutdown); SIGKILL when it takes too long."""
        terminate(self.process, 60, self.kill)

    def kill(self) -> None:
        """SIGKILL the worker and the job it runs (RQ runs a job in a child of a session of its own),
        as a crashed host would."""
        for pid in [*descendants(self.process.pid), self.process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(30)


def terminate(process: subprocess.Popen | None, grace: float, kill: Callable[[], None]) -> None:
    """SIGTERM a running child's process group; `kill` it when it lingers past `grace` seconds."""
    if process is not None and process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            kill()


def descendants(pid: int) -> list[int]:
    """The processes started by `pid`, and by them, ... (read from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
