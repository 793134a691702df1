"""What the routes need, built once per app (one app per gunicorn worker)."""

from __future__ import annotations

from flask import current_app

from backend.config import Settings
from backend.queue.interface import WorkQueue
from backend.server.auth import WebhookAuthorizer
from backend.server.connection import ConnectionWatch
from backend.server.predictor import Predictor
from backend.storage.inbox import Inboxes
from backend.storage.state import StateStore
from backend.storage.versions import ModelStore

EXTENSION = "coding_backend"


class Services:
    def __init__(self, settings: Settings, queue: WorkQueue):
        self.settings = settings
        self.store = ModelStore(settings.server.model_dir, settings.server.keep_versions)
        self.queue = queue
        self.predictor = Predictor(settings.model, self.store, settings.server.max_loaded_models)
        self.webhook_auth = WebhookAuthorizer(settings.server)
        self.label_studio = ConnectionWatch(settings.server)
        server = settings.server
        self.inboxes = Inboxes(self.store.layout, server.inbox_max_bytes_per_project, server.inbox_max_bytes)

    def states(self, project: str) -> StateStore:
        return StateStore(self.store.layout.project(project))

    def recently_updated_projects(self) -> list[str]:
        """Projects with a serving version, the most recently updated first (what to load at start)."""
        states = {project: self.states(project).read() for project in self.store.projects()}
        serving = [project for project, state in states.items() if state.current_version]
        return sorted(serving, key=lambda project: states[project].updated_at or "", reverse=True)


def services() -> Services:
    return current_app.extensions[EXTENSION]
