"""Basic auth for every route, and the same credentials on the project's webhook to us.

Label Studio sends its ML-backend calls with the credentials it was given, but creates the event
webhook without them: :class:`WebhookAuthorizer` adds our header to it.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Flask, current_app, jsonify, request

from backend.config import ServerSettings
from backend.config.redact import hide_credentials
from backend.errors import BackendError
from backend.studio.client import StudioAPI, StudioClient, basic_auth_header

log = logging.getLogger(__name__)


def expected_header(server: ServerSettings) -> str | None:
    """The Authorization header every request must carry; None when auth is off."""
    if not server.basic_auth_user or server.basic_auth_pass is None:
        return None
    return basic_auth_header(server.basic_auth_user, server.basic_auth_pass.get_secret_value())


OPEN_PATHS = ("/health",)  # reveals nothing; orchestrators' probes cannot send credentials


class AuthConfigError(BackendError):
    """The server would be open to anyone: the message says how to protect it (or waive that)."""


def refuse_open_server(server: ServerSettings) -> None:
    """Raise unless requests must authenticate, or the admin waived that (ALLOW_UNAUTHENTICATED)."""
    if not server.auth_required and not server.allow_unauthenticated:
        raise AuthConfigError(
            "refusing to serve without authentication: anyone who reaches the backend could start "
            "training and rewrite Label Studio's predictions. Set BASIC_AUTH_USER and BASIC_AUTH_PASS "
            "(and the same in Label Studio's model settings), or ALLOW_UNAUTHENTICATED=true where "
            "nobody else can reach it."
        )


def init_app(app: Flask, server: ServerSettings) -> None:
    """Require basic auth on every route but /health; refuse to build an open app unless waived."""
    refuse_open_server(server)
    if not server.auth_required:
        log.warning("serving WITHOUT authentication (ALLOW_UNAUTHENTICATED=true)")
    app.extensions["coding_backend_auth"] = expected_header(server)
    app.before_request(_require_basic_auth)


def _require_basic_auth():
    expected = current_app.extensions["coding_backend_auth"]
    if expected is None or request.path in OPEN_PATHS:
        return None
    given = request.headers.get("Authorization", "")
    if hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
        return None
    response = jsonify(error="authentication required")
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Basic realm="coding-backend"'
    return response


class WebhookAuthorizer:
    """Adds our basic auth to a project's webhook, once per project and process.

    Label Studio calls /setup very often, and listing its ML backends makes it call /setup
    again; so we never call back from every /setup. One attempt at a time per project, repeated
    at most every RETRY_SECONDS until a webhook was found; each attempt looks again a few times
    over 7.5 s (FOLLOW_UP), since Label Studio creates the webhook after the /setup that asked.
    """

    RETRY_SECONDS = 10.0
    FOLLOW_UP = (0.5, 1.0, 2.0, 4.0)  # within RETRY_SECONDS: one attempt at a time per project

    def __init__(self, server: ServerSettings, client: Callable[[], StudioAPI] | None = None):
        self.server = server
        self.client = client or (lambda: StudioClient(server.label_studio_url, server.api_key()))
        self._done: set[str] = set()
        self._last_try: dict[str, float] = {}
        self._lock = threading.Lock()
        self._told: set[str] = set()

    def ensure_soon(self, project: str) -> None:
        """Soon (in a thread), make the project's webhook to this backend carry our basic auth."""
        if expected_header(self.server) is None or not self.server.label_studio_api_key:
            return
        with self._lock:
            now = time.monotonic()
            if project in self._done or now - self._last_try.get(project, -1e9) < self.RETRY_SECONDS:
                return
            self._last_try[project] = now
        threading.Thread(target=self.follow_up, args=(project,), daemon=True).start()

    def follow_up(self, project: str) -> None:
        """Authorize now, and again a few times while no webhook is there yet: connecting a model,
        Label Studio calls /setup first and makes the webhook after it, and may not call again."""
        for wait in (*self.FOLLOW_UP, None):
            if self.authorize(project) or wait is None:
                return
            time.sleep(wait)

    def authorize(self, project: str) -> bool:
        """Add our header to the project's webhook to this backend: at BACKEND_URL, or else at the URL
        Label Studio's own record of the project's ML backend holds (ours: our basic-auth user). The
        Host of a request never decides. Returns whether a webhook of ours carries it now."""
        client, header = self.client(), expected_header(self.server)
        try:
            urls = (
                [self.server.backend_url] if self.server.backend_url else self._recorded_urls(client, project)
            )
            found = sum(client.authorize_webhooks(int(project), urlsplit(url).netloc, header) for url in urls)
        except Exception as exc:
            log.warning("project %s: could not add basic auth to its webhook: %s", project, exc)
            return False
        if found:
            with self._lock:
                self._done.add(project)
            log.info("project %s: its webhook carries basic auth", project)
        return bool(found)

    def _recorded_urls(self, client: StudioAPI, project: str) -> list[str]:
        """Where Label Studio calls this backend for `project`, by its ML backend record (said once)."""
        urls = client.backend_urls(int(project), self.server.basic_auth_user)
        if project not in self._told:
            self._told.add(project)
            log.info(
                "project %s: BACKEND_URL is not set; Label Studio's record of this backend gives %s",
                project,
                ", ".join(hide_credentials(url, url) for url in urls) or "no URL yet",
            )
        return urls
