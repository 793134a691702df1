"""Basic auth for every route, and the same credentials on the project's webhook to us.

Label Studio sends its ML-backend calls with the credentials it was given, but creates the event
webhook without them: :class:`WebhookAuthorizer` adds our header to it.
"""

from __future__ import annotations

import base64
import hmac
import logging
import threading
import time

from flask import Flask, current_app, jsonify, request

from backend.config import ServerSettings

log = logging.getLogger(__name__)


def basic_auth_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def expected_header(server: ServerSettings) -> str | None:
    """The Authorization header every request must carry; None when auth is off."""
    if not server.basic_auth_user or server.basic_auth_pass is None:
        return None
    return basic_auth_header(server.basic_auth_user, server.basic_auth_pass.get_secret_value())


def init_app(app: Flask, server: ServerSettings) -> None:
    """Require basic auth on every route when BASIC_AUTH_USER/PASS are set."""
    app.extensions["coding_backend_auth"] = expected_header(server)
    app.before_request(_require_basic_auth)


def _require_basic_auth():
    expected = current_app.extensions["coding_backend_auth"]
    if expected is None:
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
    at most every RETRY_SECONDS until a webhook was found (Label Studio creates it after the
    first /setup).
    """

    RETRY_SECONDS = 10.0

    def __init__(self, server: ServerSettings):
        self.server = server
        self._done: set[str] = set()
        self._last_try: dict[str, float] = {}
        self._lock = threading.Lock()

    def ensure_soon(self, project: str, backend_host: str) -> None:
        if expected_header(self.server) is None or not self.server.label_studio_api_key:
            return
        with self._lock:
            now = time.monotonic()
            if project in self._done or now - self._last_try.get(project, -1e9) < self.RETRY_SECONDS:
                return
            self._last_try[project] = now
        threading.Thread(target=self._authorize, args=(project, backend_host), daemon=True).start()

    def _authorize(self, project: str, backend_host: str) -> None:
        from backend.studio.client import StudioClient

        try:
            client = StudioClient(self.server.label_studio_url, self.server.api_key())
            found = client.authorize_webhooks(int(project), backend_host, expected_header(self.server))
        except Exception as exc:
            log.warning("project %s: could not add basic auth to its webhook: %s", project, exc)
            return
        if found:
            with self._lock:
                self._done.add(project)
            log.info("project %s: its webhook carries basic auth", project)
