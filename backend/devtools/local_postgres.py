"""A throwaway PostgreSQL server on this machine (Debian's `postgresql` package), for a Label Studio
on its production database: the end-to-end tests and the load benchmark."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from backend.devtools.local_studio import free_port
from backend.studio.setup import wait_until

POSTGRES_BIN = Path(os.environ.get("POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))


class LocalPostgres:
    """A throwaway PostgreSQL server on 127.0.0.1, run as the `postgres` user (it refuses root)."""

    def __init__(self, directory: Path):
        self.directory, self.port = directory, free_port()
        self.name, self.user, self.password = "labelstudio", "labelstudio", "ls-e2e-password"

    def _as_postgres(self, *command: str, **kwargs) -> subprocess.CompletedProcess:
        runner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*runner, *command], check=True, capture_output=True, text=True, **kwargs)

    def start(self) -> LocalPostgres:
        data, sockets = self.directory / "data", self.directory / "sockets"
        for path in (self.directory, sockets):
            path.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(path, "postgres", "postgres")
        self._as_postgres(str(POSTGRES_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={sockets}"
        self._as_postgres(
            str(POSTGRES_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.directory / "postgres.log"),
            "-w",
            "start",
            timeout=120,
        )
        psql = [str(POSTGRES_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c"]

        def accepting() -> bool:
            return subprocess.run([*psql, "select 1"], capture_output=True).returncode == 0

        if not wait_until(accepting, 60):
            raise RuntimeError(
                f"PostgreSQL did not accept connections within 60 s: {self.directory}/postgres.log"
            )
        subprocess.run(
            [*psql, f"create user {self.user} password '{self.password}'"], check=True, capture_output=True
        )
        subprocess.run(
            [*psql, f"create database {self.name} owner {self.user}"], check=True, capture_output=True
        )
        return self

    def stop(self) -> None:
        self._as_postgres(
            str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast", "stop", timeout=60
        )

    def label_studio_env(self) -> dict[str, str]:
        """What Label Studio reads to use this server."""
        return {
            "DJANGO_DB": "default",
            "POSTGRE_NAME": self.name,
            "POSTGRE_USER": self.user,
            "POSTGRE_PASSWORD": self.password,
            "POSTGRE_HOST": "127.0.0.1",
            "POSTGRE_PORT": str(self.port),
        }
