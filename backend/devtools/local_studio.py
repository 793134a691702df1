"""A throwaway local Label Studio for end-to-end tests and demos.

Label Studio pins many packages (Django, pydantic, numpy, ...), so it lives in its own virtualenv,
never in ours. The server runs on 127.0.0.1 with a temporary data dir, a known admin and a known
legacy API token, and with the SSRF guards off so it can reach a backend on 127.0.0.1.
Passwords and tokens are never logged; its own log goes to a file in the data dir.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

from backend.errors import BackendError

log = logging.getLogger(__name__)

LABEL_STUDIO_VERSION = "1.23.2"
DEFAULT_USERNAME = "admin@example.com"
LOG_NAME = "label-studio.log"

# Run by `manage.py shell` (see LocalLabelStudio.coder_tokens): emails on stdin, tokens printed.
CODER_TOKENS = """
import json, sys
from organizations.models import Organization
from rest_framework.authtoken.models import Token
from users.models import User
organization = Organization.objects.order_by("id").first()
tokens = {}
for email in json.loads(sys.stdin.read()):
    user = User.objects.get(email=email)
    if not organization.has_user(user):
        organization.add_user(user)
    user.active_organization = organization
    user.save(update_fields=["active_organization"])
    tokens[email] = Token.objects.get_or_create(user=user)[0].key
print("TOKENS " + json.dumps(tokens))
"""
TOKEN_FILE = ".api-token"
# Settings a throwaway server needs: a legacy token we choose, a backend on 127.0.0.1 allowed
# (SSRF guards off), and nothing sent home (analytics, version check, Sentry).
IMPORT_FLAG = "fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short"
FIXED_ENV = {
    "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
    "ML_BLOCK_LOCAL_IP": "false",
    "SSRF_PROTECTION_ENABLED": "false",
    "COLLECT_ANALYTICS": "false",
    "LATEST_VERSION_CHECK": "false",
    "SENTRY_DSN": "",
    "FRONTEND_SENTRY_DSN": "",
    "PYTHONUNBUFFERED": "1",
    # An import recounts only the tasks it writes, not the whole project (and checks no result against
    # the form): the backend imports a queue head's new tasks (WRITE_BY_IMPORT).
    IMPORT_FLAG: "true",
}
# Variables of our own environment that would leak into Label Studio's interpreter or settings.
SCRUBBED_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE", "LABEL_STUDIO_API_KEY")


class LabelStudioError(BackendError, RuntimeError):
    """Installing or starting the local Label Studio failed; the message says why."""


# --- installation -----------------------------------------------------------------------------


def default_venv_dir() -> Path:
    """Where Label Studio's own virtualenv lives unless the caller says otherwise: LABEL_STUDIO_VENV,
    or ``.ls-venv`` in the current directory."""
    return Path(os.environ.get("LABEL_STUDIO_VENV") or ".ls-venv").absolute()


def _bin(venv_dir: Path, name: str) -> Path:
    return venv_dir / ("Scripts" if os.name == "nt" else "bin") / name


def installed_version(venv_dir: Path) -> str | None:
    """The label-studio version installed in venv_dir, or None.

    Read from package metadata: `label-studio --version` is not a version query, it starts a
    server on 0.0.0.0:8080 (and even `--help` creates ~/.local/share/label-studio).
    """
    python = _bin(venv_dir, "python")
    if not python.exists():
        return None
    code = "import importlib.metadata as m; print(m.version('label-studio'))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def _run_logged(command: list[str], what: str) -> None:
    """Run a long command, passing its milestones to our log so a slow install shows progress."""
    log.info("%s: %s", what, " ".join(command))
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL
    )
    assert process.stdout is not None
    tail: list[str] = []
    for line in process.stdout:
        line = line.rstrip()
        tail = [*tail[-29:], line]
        milestone = line.startswith(("Collecting", "Installing", "Successfully", "ERROR"))
        log.log(logging.INFO if milestone else logging.DEBUG, "%s", line)
    if process.wait() != 0:
        raise LabelStudioError(f"{what} failed (exit {process.returncode}):\n" + "\n".join(tail))


def ensure_label_studio(
    venv_dir: Path, version: str = LABEL_STUDIO_VERSION, python: str = sys.executable
) -> Path:
    """Install label-studio==version into its own venv unless already there; return its executable."""
    venv_dir = Path(venv_dir)
    executable = _bin(venv_dir, "label-studio")
    if executable.exists() and installed_version(venv_dir) == version:
        log.debug("Label Studio %s already installed in %s", version, venv_dir)
        return executable
    started = time.monotonic()
    if not _bin(venv_dir, "python").exists():
        _run_logged([python, "-m", "venv", str(venv_dir)], "Creating Label Studio's virtualenv")
    pip = [str(_bin(venv_dir, "python")), "-m", "pip", "install", "--progress-bar", "off"]
    _run_logged([*pip, f"label-studio=={version}"], f"Installing label-studio {version} (takes minutes)")
    if not executable.exists() or installed_version(venv_dir) != version:
        raise LabelStudioError(f"label-studio {version} is still not installed in {venv_dir}")
    log.info("Label Studio %s installed in %.0f s", version, time.monotonic() - started)
    return executable


# --- the server ---------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """True if something already listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def _health(url: str, timeout: float = 2.0) -> bool:
    """True once Label Studio answers /health with {"status": "UP"}."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return json.loads(response.read().decode() or "{}").get("status") == "UP"
    except (OSError, ValueError, urllib.error.URLError):
        return False


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a pre-exec hook making the kernel SIGTERM Label Studio when our thread dies.

    Without it, a test run killed by SIGTERM (no atexit, no __exit__) leaves Label Studio running in
    its own session. Caveat: the signal fires when the *thread* that started it exits.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    pr_set_pdeathsig = 1

    def hook() -> None:
        libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM))

    return hook


def _redact(text: str, hidden: list[str]) -> str:
    for secret in hidden:
        if secret:
            text = text.replace(secret, "***")
    return text


def new_token() -> str:
    return secrets.token_hex(20)  # legacy tokens are at most 40 characters


def kept_token(data_dir: Path) -> str:
    """The token of a kept data dir, made on its first start: Label Studio applies
    LABEL_STUDIO_USER_TOKEN only when it makes the user, so a new one would be refused later."""
    path = data_dir / TOKEN_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    token = new_token()
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(token)
    return token


class LocalLabelStudio:
    """A Label Studio server in a child process group; use it as a context manager.

    `url`, `username`, `password` and `token` (a legacy API token, sent as `Token <token>`) are
    fixed before start, so callers can hand them to the SDK or to a backend's settings.
    """

    def __init__(
        self,
        executable: Path,
        *,
        port: int | None = None,
        data_dir: Path | None = None,
        username: str = DEFAULT_USERNAME,
        password: str | None = None,
        token: str | None = None,
        startup_timeout: float = 180.0,
        extra_env: Mapping[str, str] | None = None,
    ):
        self.executable = Path(executable)
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.username = username
        self.password = password or secrets.token_urlsafe(16)
        self.token = token or (kept_token(Path(data_dir)) if data_dir else new_token())
        self.startup_timeout = startup_timeout
        self.extra_env = dict(extra_env or {})
        self._given_data_dir = Path(data_dir) if data_dir else None
        self.data_dir: Path | None = self._given_data_dir
        self._process: subprocess.Popen | None = None
        self._log_file: IO[bytes] | None = None

    def __repr__(self) -> str:
        return f"LocalLabelStudio(url={self.url!r}, username={self.username!r}, data_dir={self.data_dir})"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        if self.data_dir is None:
            raise LabelStudioError("Label Studio has no data dir before start()")
        return self.data_dir / LOG_NAME

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in SCRUBBED_ENV}
        env.update(FIXED_ENV)
        env.update(
            {
                "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir),
                "LABEL_STUDIO_USERNAME": self.username,
                "LABEL_STUDIO_PASSWORD": self.password,
                "LABEL_STUDIO_USER_TOKEN": self.token,
            }
        )
        env.update(self.extra_env)
        return env

    def start(self) -> LocalLabelStudio:
        """Start the server and wait until /health says UP; raise with its log tail if it fails."""
        if self.running:
            return self
        if port_in_use(self.host, self.port):
            # Label Studio would silently move to the next port, and our url would be wrong.
            raise LabelStudioError(f"port {self.port} on {self.host} is already in use")
        self.data_dir = self._given_data_dir or Path(tempfile.mkdtemp(prefix="label-studio-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [str(self.executable), "start", "--no-browser", "--internal-host", self.host]
        command += ["-p", str(self.port)]
        log.info("Starting Label Studio at %s (data and log in %s)", self.url, self.data_dir)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self._process = subprocess.Popen(
            command,
            env=self._environment(),
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() also ends its children
            preexec_fn=_die_with_parent(),
        )
        atexit.register(self.stop)
        try:
            self._wait_until_up()
        except BaseException:
            self.stop(remove_data=False)
            raise
        return self

    def _wait_until_up(self) -> None:
        started = time.monotonic()
        next_report = started + 15
        while not _health(self.url):
            assert self._process is not None
            if self._process.poll() is not None:
                raise LabelStudioError(
                    f"Label Studio exited with code {self._process.returncode} during startup; "
                    f"log {self.log_path} ends with:\n{self.log_tail()}"
                )
            if f"Port {self.port} is in use" in self.log_tail():
                raise LabelStudioError(
                    f"port {self.port} was taken while Label Studio started (it moves to another port)"
                )
            now = time.monotonic()
            if now - started > self.startup_timeout:
                raise LabelStudioError(
                    f"Label Studio not up after {self.startup_timeout:.0f} s; "
                    f"log {self.log_path} ends with:\n{self.log_tail()}"
                )
            if now >= next_report:
                log.info("Waiting for Label Studio at %s (%.0f s so far)", self.url, now - started)
                next_report = now + 15
            time.sleep(1.0)
        log.info("Label Studio is up at %s after %.0f s", self.url, time.monotonic() - started)

    def log_tail(self, lines: int = 40) -> str:
        """The end of Label Studio's log, with the password and token blanked out."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return _redact("\n".join(text.splitlines()[-lines:]), [self.password, self.token])

    def coder_tokens(self, emails: list[str], timeout: float = 300) -> dict[str, str]:
        """Make existing users coders of the admin's organization and return their legacy API
        tokens, for tests and benches that act as several coders. Users made through the API
        belong to no organization (so their annotations fire no project webhook), and Label
        Studio's API hands a user's token only to that user's session; so this asks Django
        directly, in one shell for all of them."""
        package = Path(self.executable).parent.parent / "lib"
        manage = next(package.glob("python3*/site-packages/label_studio/manage.py"))
        done = subprocess.run(
            [str(Path(self.executable).parent / "python"), str(manage), "shell", "-c", CODER_TOKENS],
            input=json.dumps(emails),
            env=self._environment(),
            cwd=manage.parent,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        for line in done.stdout.splitlines():
            if line.startswith("TOKENS "):
                return json.loads(line.removeprefix("TOKENS "))
        raise LabelStudioError(f"could not make the coders: {_redact(done.stderr[-2000:], [self.token])}")

    def stop(self, timeout: float = 20.0, remove_data: bool = True) -> None:
        """Terminate the process group, kill it if it lingers; drop a temp data dir we created."""
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            self._signal(process, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("Label Studio ignored SIGTERM for %.0f s; killing it", timeout)
                self._signal(process, signal.SIGKILL)
                process.wait(timeout=timeout)
            log.info("Label Studio at %s stopped", self.url)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if remove_data and self._given_data_dir is None and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    @staticmethod
    def _signal(process: subprocess.Popen, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(process.pid, signum)

    def __enter__(self) -> LocalLabelStudio:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
