"""Whether Label Studio answers and takes our token: checked once when `serve` starts (which says
so, and refuses a token Label Studio refuses), and for the status page at most every CHECK_SECONDS,
in the background, so a page never waits on Label Studio."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from backend.config import ServerSettings
from backend.config.redact import hide_credentials
from backend.studio.client import StudioClient, StudioError

CHECK_SECONDS = 30.0
CHECK_TIMEOUT = 5.0


@dataclass(frozen=True)
class Connection:
    """What the last check found: `state` is connected, unreachable, refused or no token."""

    state: str
    detail: str
    checked_at: float

    @property
    def ok(self) -> bool:
        return self.state == "connected"


def check_connection(server: ServerSettings, timeout: float = CHECK_TIMEOUT) -> Connection:
    """Ask Label Studio who the token is; never raises (the detail never holds a secret)."""
    where = hide_credentials(server.label_studio_url, server.label_studio_url)
    if not server.label_studio_api_key:
        detail = "LABEL_STUDIO_API_KEY is not set: rounds cannot read labels nor write predictions"
        return Connection("no token", detail, time.time())
    try:
        StudioClient(server.label_studio_url, server.api_key(), timeout=timeout).check()
    except StudioError as exc:
        if exc.status in (401, 403):
            detail = (
                f"Label Studio at {where} refused LABEL_STUDIO_API_KEY (HTTP {exc.status}): give the "
                "backend the token of Label Studio's Account & Settings page (a legacy token or a "
                "personal access token)"
            )
            return Connection("refused", detail, time.time())
        return Connection("unreachable", str(exc), time.time())
    return Connection("connected", f"Label Studio at {where} answers and takes the token", time.time())


class ConnectionWatch:
    """The last check, renewed in a background thread once it is older than CHECK_SECONDS."""

    def __init__(self, server: ServerSettings, seconds: float = CHECK_SECONDS):
        self.server, self.seconds = server, seconds
        self._last: Connection | None = None
        self._checking = False
        self._lock = threading.Lock()
        self.current()  # the first check starts with the server: usually done before anyone asks

    def current(self) -> Connection | None:
        """The last check (None before the first one finished); starts a new one when due."""
        with self._lock:
            last, due = self._last, self._last is None or time.time() - self._last.checked_at > self.seconds
            if due and not self._checking:
                self._checking = True
                threading.Thread(target=self._check, daemon=True).start()
        return last

    def _check(self) -> None:
        found = check_connection(self.server)
        with self._lock:
            self._last, self._checking = found, False
