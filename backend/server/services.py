"""What the routes need, built once per app (one app per gunicorn worker)."""

from __future__ import annotations

from flask import current_app

from backend.config import Settings
from backend.server.auth import WebhookAuthorizer
from backend.server.predictor import Predictor
from backend.storage.state import StateStore
from backend.storage.versions import ModelStore
from backend.worker.queue import WorkQueue

EXTENSION = "coding_backend"


class Services:
    def __init__(self, settings: Settings, queue: WorkQueue):
        self.settings = settings
        self.store = ModelStore(settings.server.model_dir, settings.server.keep_versions)
        self.queue = queue
        self.predictor = Predictor(settings.model, self.store)
        self.webhook_auth = WebhookAuthorizer(settings.server)

    def states(self, project: str) -> StateStore:
        return StateStore(self.store.layout.project(project))


def services() -> Services:
    return current_app.extensions[EXTENSION]
