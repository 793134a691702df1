"""The app factory: settings and the work queue in, a Flask app with its blueprints out.

Nothing happens at import time; tests build their own app with their own settings and queue.
Errors become JSON: a 4xx naming the problem for bad input and for every BackendError (each class
carries its status), a 500 (logged) for a bug.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from backend.config import Settings, load_settings
from backend.errors import BackendError
from backend.queue.interface import WorkQueue
from backend.queue.scheduler import Scheduler
from backend.server import auth, downloads, metrics, protocol, status
from backend.server.services import EXTENSION, Services
from backend.storage.cleanup import remove_orphans

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, queue: WorkQueue | None = None) -> Flask:
    """Build the app; without a queue, background work runs in child processes of this host (or in
    `coding-backend worker`s, with REDIS_URL)."""
    settings = settings or load_settings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.server.max_request_bytes
    auth.init_app(app, settings.server)
    remove_orphans(settings.server.model_dir)
    services = app.extensions[EXTENSION] = Services(settings, queue or _background_queue(settings))
    services.predictor.warm_up(services.recently_updated_projects())
    app.register_blueprint(protocol.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(status.bp)
    app.register_blueprint(downloads.bp)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(BackendError, _user_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


def _background_queue(settings: Settings) -> WorkQueue:
    """Worker processes of this host, with a sweep for requests that wait for a free slot; with
    REDIS_URL, `coding-backend worker`s on any host (the sweep repairs what a dead worker left)."""
    if settings.server.redis_url:
        from backend.queue.redis_queue import RedisQueue

        queue = RedisQueue.from_settings(settings)
    else:
        queue = Scheduler(settings.server.model_dir, settings.server.max_worker_processes)
    queue.start_sweeping()
    return queue


def _http_error(error: HTTPException):
    return jsonify(error=error.description), error.code


def _user_error(error: BackendError):
    """Every error meant for a user, in one place: its own 4xx (errors.py), its message."""
    return jsonify(error=str(error)), error.http_status


def _unexpected_error(error: Exception):
    log.exception("unexpected error in %s %s", request.method, request.path)
    return jsonify(error=f"internal error: {type(error).__name__}"), 500
