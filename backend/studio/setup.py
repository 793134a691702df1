"""Setting up a coding project: the project, its segments, and this backend connected with basic auth.

`coding-backend init` (and the compose file's `init` service) and `coding-backend demo` both set up
projects through here. Every step can run again: a project of the same title is reused, segments
it already holds are not imported twice, and a backend already connected is given the current
credentials instead of a second connection. Each failure Label Studio reports is turned into a
message naming the fix (a wrong token, SSRF protection, a backend Label Studio cannot reach).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from backend.studio.client import ONCE, StudioClient, StudioError, basic_auth_header, up_to_the_last_page

log = logging.getLogger(__name__)

BACKEND_TITLE = "coding-backend"
IMPORT_CHUNK = 2000
PAGE = 100  # projects per page of a listing
CONNECTION_STATES = {
    "CO": "connected",
    "DI": "disconnected",
    "ER": "error",
    "TR": "training",
    "PR": "predicting",
}
SSRF_FIX = (
    "Label Studio refuses to call a backend on a local or private address: start Label Studio with "
    "SSRF_PROTECTION_ENABLED=false and ML_BLOCK_LOCAL_IP=false (README: Security)"
)


NO_DOT_FIX = (
    "Label Studio accepts no webhook to a host name without a dot (like http://backend:9090), and "
    "without the webhook annotations never reach the backend: give Label Studio an address like "
    "http://backend.internal:9090 (docker-compose.yml gives the backend that alias), an IP address or "
    "localhost"
)


@dataclass(frozen=True)
class Connection:
    """How Label Studio sees the backend, and whether the project's webhook carries our credentials."""

    state: str
    webhook_authorized: bool


@dataclass(frozen=True)
class ProjectSetup:
    """What setting up a project did."""

    project: int
    created: bool
    imported: int
    already_there: int
    connection: Connection


SEGMENT_ONLY = ("id", "text", "codes", "coder")  # what a segment file says that is not task data as such


def segment_tasks(segments: Sequence[dict], text_field: str = "text") -> list[dict]:
    """Segments (`text`, `id`, optionally `question`) as Label Studio task data: the text under the
    label config's text field, the interview question, the segment's id in its file, and its other
    fields as they are (an interview's id and order, its metadata: `export` groups and describes
    interviews by them)."""
    return [
        {
            **{key: value for key, value in row.items() if key not in SEGMENT_ONLY},
            text_field: row["text"],
            "question": row.get("question", ""),
            "segment_id": str(row["id"]),
        }
        for row in segments
    ]


def segment_key(data: dict, text_field: str = "text") -> tuple[str, str]:
    """What makes two tasks the same segment: its id in the file and its text (without NUL characters,
    which reading a file removes: research/corpus.py `read_segments`; Label Studio on SQLite holds
    them in a task imported before)."""
    return str(data.get("segment_id", "")), str(data.get(text_field, "")).replace("\x00", "")


class ProjectSetter:
    """Sets up coding projects in one Label Studio through `client` (its SDK, its error messages)."""

    def __init__(self, client: StudioClient):
        self.client = client
        self.sdk = client.sdk

    def set_up(
        self,
        title: str,
        label_config: str,
        tasks: Sequence[dict],
        backend_url: str,
        auth: tuple[str, str] | None,
        *,
        text_field: str = "text",
        webhook_timeout: float = 60,
    ) -> ProjectSetup:
        """The whole set-up, in order; raises StudioError with the fix when Label Studio refuses a step."""
        project, created = self.project(title, label_config)
        imported, already_there = self.import_tasks(project, tasks, text_field)
        connection = self.connect(project, backend_url, auth, timeout=webhook_timeout)
        return ProjectSetup(project, created, imported, already_there, connection)

    def project(self, title: str, label_config: str) -> tuple[int, bool]:
        """The id of the project called `title` (the oldest, if several), or of a new one; and whether
        it is new. An existing project keeps its label config: coders may have annotated with it."""
        projects = self._call(
            "list projects",
            lambda: list(up_to_the_last_page(self.sdk.projects.list(title=title, page_size=PAGE), PAGE)),
        )
        same = sorted(int(p.id) for p in projects if p.title == title)
        if same:
            existing = self._call("read the project", lambda: self.sdk.projects.get(id=same[0]))
            if (existing.label_config or "").strip() != label_config.strip():
                log.warning("project %s keeps its own label config (it differs from the one given)", same[0])
            return same[0], False
        created = self._call(
            "create the project",
            lambda: self.sdk.projects.create(title=title, label_config=label_config, request_options=ONCE),
        )
        return int(created.id), True

    def import_tasks(self, project: int, tasks: Sequence[dict], text_field: str = "text") -> tuple[int, int]:
        """Import the tasks whose segment the project does not hold yet; returns (imported, already there)."""
        if not tasks:
            return 0, 0
        held = {
            segment_key(task.data, text_field)
            for annotated in (False, True)
            for task in self.client.tasks(project, annotated=annotated, data_only=True)
        }
        new = [task for task in tasks if segment_key(task, text_field) not in held]
        for start in range(0, len(new), IMPORT_CHUNK):
            chunk = list(new[start : start + IMPORT_CHUNK])
            self._call(
                "import tasks",
                lambda chunk=chunk: self.sdk.projects.import_tasks(
                    id=project, request=chunk, request_options=ONCE
                ),
            )
            log.info("project %s: imported %d/%d segments", project, start + len(chunk), len(new))
        return len(new), len(tasks) - len(new)

    def connect(
        self, project: int, backend_url: str, auth: tuple[str, str] | None, *, timeout: float = 60
    ) -> Connection:
        """Connect the backend at `backend_url` (basic auth when `auth`), or renew the connection that
        is there; then wait until the backend has put its credentials on the project's webhook."""
        fields = {"url": backend_url, "title": BACKEND_TITLE, "project": project}
        if auth:
            fields |= {"auth_method": "BASIC_AUTH", "basic_auth_user": auth[0], "basic_auth_pass": auth[1]}
        else:
            fields |= {"auth_method": "NONE"}
        ours = self._connections(project, backend_url)
        if ours:
            connected = self._call(
                "renew the backend's connection", lambda: self.sdk.ml.update(id=ours[0].id, **fields)
            )
        else:
            connected = self._connect_once(project, backend_url, fields)
        state = CONNECTION_STATES.get(str(connected.state), str(connected.state))
        self._ensure_webhook(project, backend_url, auth)
        authorized = auth is None or self._webhook_authorized(project, backend_url, auth, timeout)
        self._keep_one_connection(project, backend_url, int(connected.id))
        return Connection(state, authorized)

    def _webhook_authorized(
        self, project: int, backend_url: str, auth: tuple[str, str], timeout: float
    ) -> bool:
        """Whether the backend put its credentials on the project's webhook within `timeout`."""
        header = basic_auth_header(*auth)
        return wait_until(
            lambda: any(
                (hook.headers or {}).get("Authorization") == header
                for hook in self._webhooks(project, backend_url)
            ),
            timeout,
        )

    def _keep_one_connection(self, project: int, backend_url: str, kept: int) -> None:
        """Disconnect any second connection to this backend (seen in the e2e suite: two after one
        `init`, whose cause is not known), so Label Studio asks it once per task, not twice."""
        for extra in self._connections(project, backend_url):
            if int(extra.id) != kept:
                log.warning(
                    "project %s was connected to %s twice: one connection removed", project, backend_url
                )
                self._call("remove a second connection", lambda extra=extra: self.sdk.ml.delete(id=extra.id))

    def _connections(self, project: int, backend_url: str) -> list:
        """The project's connections to the backend at `backend_url`."""
        connected = self._call("list the connected backends", lambda: self.sdk.ml.list(project=project))
        return [ml for ml in connected if (ml.url or "").rstrip("/") == backend_url.rstrip("/")]

    def _connect_once(self, project: int, backend_url: str, fields: dict):
        """Connect the backend, sent once (studio/client.py ONCE); a refusal Label Studio answered
        after saving the connection leaves it made, and it is taken."""
        try:
            return self._call(
                "connect the backend", lambda: self.sdk.ml.create(**fields, request_options=ONCE)
            )
        except StudioError:
            made = self._connections(project, backend_url)
            if not made:
                raise
            return made[0]

    def _ensure_webhook(self, project: int, backend_url: str, auth: tuple[str, str] | None) -> None:
        """Label Studio makes the webhook to `<backend>/webhook` when a backend is first connected, and
        then never again; make it when it is missing (deleted, say), with our credentials."""
        if self._webhooks(project, backend_url):
            return
        url = backend_url.rstrip("/") + "/webhook"
        log.warning("project %s has no webhook to %s: making it", project, url)
        fields = {"project": project, "url": url, "send_payload": True, "send_for_all_actions": True}
        if auth:
            fields["headers"] = {"Authorization": basic_auth_header(*auth)}
        try:
            self.client.call(
                "make the webhook", lambda: self.sdk.webhooks.create(**fields, request_options=ONCE)
            )
        except StudioError as exc:
            if exc.status == 400 and "." not in (urlsplit(backend_url).hostname or ""):
                raise StudioError(f"{exc}\nfix: {NO_DOT_FIX}", exc.status) from None
            raise StudioError(explain(str(exc), exc.status), exc.status) from None

    def _webhooks(self, project: int, backend_url: str) -> list:
        """The project's webhooks to this backend."""
        url = backend_url.rstrip("/") + "/webhook"
        hooks = self._call("list webhooks", lambda: self.sdk.webhooks.list(project=str(project)))
        return [hook for hook in hooks if (hook.url or "").rstrip("/") == url]

    def _call(self, what: str, call: Callable):
        try:
            return self.client.call(what, call)
        except StudioError as exc:
            raise StudioError(explain(str(exc), exc.status), exc.status) from None


def explain(message: str, status: int | None) -> str:
    """Label Studio's refusal, with what to do about it."""
    if status == 401 or "Invalid token" in message:
        return (
            f"{message}\nfix: LABEL_STUDIO_API_KEY is not a valid token of this Label Studio: copy the "
            "Access Token of Account & Settings (or the LABEL_STUDIO_USER_TOKEN it was started with)"
        )
    if "reserved network address" in message or "blocked" in message.lower():
        return f"{message}\nfix: {SSRF_FIX}"
    if "resolve hostname" in message:
        return (
            f"{message}\nfix: Label Studio cannot resolve the backend's host: BACKEND_URL must be the "
            "address Label Studio reaches the backend at (in compose: http://backend:9090)"
        )
    if "Can't connect to ML backend" in message:
        return (
            f"{message}\nfix: Label Studio cannot reach the backend at BACKEND_URL: is it running, and is "
            "that the address Label Studio reaches it at (not the one you reach it at)?"
        )
    if status is None:
        return f"{message}\nfix: is Label Studio running at LABEL_STUDIO_URL?"
    return message


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    """Whether `condition` became true within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
