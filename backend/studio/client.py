"""The Label Studio client: every call this backend makes to Label Studio, through label-studio-sdk.

Label Studio is the source of truth for labels: every round reads all annotated tasks from here
(the fast loop right after its new queue head is live: worker/labels.py), so a lost webhook never
loses a label.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from backend.config.redact import hide_credentials
from backend.domain.tasks import Task
from backend.errors import BackendError

if TYPE_CHECKING:  # the SDK is imported when a client is made
    from label_studio_sdk.types import LseProjectResponse

log = logging.getLogger(__name__)

UNCERTAINTY_SAMPLING = "Uncertainty sampling"
# Bug worked around, for every call that creates something: label-studio-sdk sends a request again
# (twice, by default) when Label Studio answers 5xx, 408, 409 or 429, a POST too. Label Studio on
# SQLite answers 500 "database is locked" under load, at times after it saved the row, and the
# retry then makes a second one (seen: one `init` connected the backend twice, under load). So a
# create is sent once (`request_options=ONCE`), and what a failed one may have made is found by
# the caller's next step (a prediction adopted, a project or connection found by its name or URL).
ONCE = {"max_retries": 0}
PREDICTION_CHUNK = 1000
TASK_PAGE = 500
LOOK_UP_PAGE = 100  # the tasks of one look-up read: an import call's worth


def basic_auth_header(user: str, password: str) -> str:
    """The Authorization header of HTTP basic auth: what the backend expects, and what Label Studio's
    webhooks to it must carry."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _reason(body: object) -> str:
    """What Label Studio's error body says, without its envelope (id, version, HTML links)."""
    if not isinstance(body, dict):
        return str(body)[:500]
    errors = body.get("validation_errors") or {}
    if isinstance(errors, dict) and errors:
        said = "; ".join(
            str(m)
            for messages in errors.values()
            for m in (messages if isinstance(messages, list) else [messages])
        )
    else:
        said = str(body.get("detail") or body)
    return re.sub(r"<[^>]+>", "", said)[:500]


class StudioError(BackendError, RuntimeError):
    """Label Studio refused or failed a call; the message says which and why (never the key)."""

    http_status = 424  # Failed Dependency: our answer depended on Label Studio's, which failed

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status  # the HTTP status Label Studio answered with, when it answered


def up_to_the_last_page(first, page_size: int) -> Iterator:
    """The items of an SDK listing, from its `first` page to the last, never asking for the next.

    The SDK asks for one more page after every page that was not empty, and Label Studio answers a
    page past the end with 404 "Invalid page" and a traceback in its log (one per listing, and the
    fast loop lists every round). So the listing stops at a short page or once the count it gave is
    reached. A 404 still ends it (tasks deleted while it read): what the SDK made of it.
    """
    from label_studio_sdk.core.api_error import ApiError

    read = 0
    try:
        for page in first.iter_pages():
            items = page.items or []
            yield from items
            read += len(items)
            count = getattr(page.response, "total", None)  # tasks say `total`, projects `count`
            count = getattr(page.response, "count", None) if count is None else count
            if len(items) < page_size or (isinstance(count, int) and read >= count):
                return
    except ApiError as exc:
        if exc.status_code != 404:
            raise


def as_dict(item) -> dict:
    """An SDK listing's item as a plain dict (the SDK answers models; a fake or older SDK, dicts)."""
    return item.model_dump() if hasattr(item, "model_dump") else dict(item)


def _filter(total_annotations_operator: str) -> str:
    items = [
        {
            "filter": "filter:tasks:total_annotations",
            "operator": total_annotations_operator,
            "type": "Number",
            "value": 0,
        }
    ]
    return json.dumps({"filters": {"conjunction": "and", "items": items}})


class StudioAPI(Protocol):
    """Every call the backend makes to Label Studio: what :class:`StudioClient` does, and what the
    tests' fake does (tests/fakes.py is checked against this protocol)."""

    def label_config(self, project: int) -> str: ...

    def tasks(self, project: int, *, annotated: bool, data_only: bool = False) -> Iterator[Task]: ...

    def task_count(self, project: int) -> int: ...

    def user_emails(self) -> dict[int, str]: ...

    def predictions_of(self, project: int, tasks: Collection[int]) -> dict[int, list[tuple[int, str]]]: ...

    def create_prediction(self, project: int, prediction: dict) -> int: ...

    def import_predictions(self, project: int, predictions: Sequence[dict]) -> int: ...

    def update_prediction(self, project: int, prediction_id: int, prediction: dict) -> None: ...

    def rename_prediction(self, project: int, prediction_id: int, version: str) -> None: ...

    def delete_prediction(self, project: int, prediction_id: int) -> None: ...

    def served_version(self, project: int) -> str | None: ...

    def serve_version(self, project: int, version: str) -> None: ...

    def backend_urls(self, project: int, user: str | None) -> list[str]: ...

    def authorize_webhooks(self, project: int, backend_host: str, authorization: str) -> int: ...


class StudioClient:
    """A thin, typed wrapper over label-studio-sdk for one Label Studio server."""

    def __init__(self, url: str, api_key: str, timeout: float = 120.0):
        from label_studio_sdk.client import LabelStudio

        if not url or not api_key:
            raise StudioError("LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY are needed to talk to Label Studio")
        self.url = url.rstrip("/")
        self._sdk = LabelStudio(base_url=self.url, api_key=api_key, timeout=timeout)

    # --- reading ------------------------------------------------------------------------------

    def label_config(self, project: int) -> str:
        return self._project(project, "label_config").label_config

    def _project(self, project: int, field: str) -> LseProjectResponse:
        """The project with one of its fields: Label Studio computes only what `include` names. Without
        it each read counts the project's tasks, annotations and predictions (100,000 tasks on
        SQLite: 0.75 s of every round's go-live under coders' load, docs/benchmarks.md)."""
        options = {"additional_query_parameters": {"include": f"id,{field}"}}
        read = self._sdk.projects.get
        return self.call("read the project", lambda: read(id=project, request_options=options))

    def tasks(self, project: int, *, annotated: bool, data_only: bool = False) -> Iterator[Task]:
        """All tasks with (annotated=True) or without (False) a submitted annotation, paged.

        `data_only` leaves out annotations and predictions: much faster on a large project.
        """
        first = self.call(
            "list tasks",
            lambda: self._sdk.tasks.list(
                project=project,
                page_size=TASK_PAGE,
                fields="task_only" if data_only else "all",
                query=_filter("greater" if annotated else "equal"),
            ),
        )
        try:
            for task in up_to_the_last_page(first, TASK_PAGE):
                raw = as_dict(task)
                yield Task(
                    int(raw["id"]),
                    raw.get("data") or {},
                    tuple(raw.get("annotations") or ()),
                    tuple(raw.get("predictions") or ()),
                )
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            message = f"Label Studio at {self.url} failed while listing tasks of project {project}: {exc}"
            raise StudioError(self._scrub(message), status) from None

    def task_count(self, project: int) -> int:
        """How many tasks the project holds (one call; an export's progress counts against it)."""
        return self._project(project, "task_number").task_number or 0

    def user_emails(self) -> dict[int, str]:
        """Label Studio user id → email, to name the coder behind each annotation."""
        users = self.call("list users", self._sdk.users.list)
        return {int(user.id): user.email or f"user-{user.id}" for user in users}

    def predictions_of(self, project: int, tasks: Collection[int]) -> dict[int, list[tuple[int, str]]]:
        """The (id, model version) of each prediction the `tasks` hold (a task Label Studio lacks holds
        none), one read per LOOK_UP_PAGE: the Data Manager's listing of the selected tasks.

        An import answers no ids, and a queue head's rewrite needs one per task: looked up one call
        each, they were 432 of the backend's 1,740 calls at the stress pace (docs/benchmarks.md).
        """
        held: dict[int, list[tuple[int, str]]] = {int(task): [] for task in tasks}
        wanted = sorted(held)
        for start in range(0, len(wanted), LOOK_UP_PAGE):
            page = wanted[start : start + LOOK_UP_PAGE]
            query = json.dumps({"selectedItems": {"all": False, "included": page}})
            listed = self.call(
                f"look up the predictions of {len(page)} tasks",
                lambda page=page, query=query: self._sdk.tasks.list(
                    project=project, page_size=len(page), fields="all", query=query
                ),
            )
            for task in listed.items or ():
                raw = as_dict(task)
                held[int(raw["id"])] = [
                    (int(p["id"]), p.get("model_version") or "") for p in raw.get("predictions") or ()
                ]
        return held

    # --- writing ------------------------------------------------------------------------------

    def import_predictions(self, project: int, predictions: Sequence[dict]) -> int:
        """Import predictions in chunks; returns how many Label Studio reports as created (no ids).

        Label Studio silently drops invalid predictions, so callers compare the count. Unless its
        flag `fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short` is on, each
        call recounts every task of the project and holds its database for seconds on a large one
        (studio/task_predictions.py imports only with WRITE_BY_IMPORT).
        """
        created = 0
        for start in range(0, len(predictions), PREDICTION_CHUNK):
            chunk = list(predictions[start : start + PREDICTION_CHUNK])
            response = self.call(
                "import predictions",
                lambda chunk=chunk: self._sdk.projects.import_predictions(
                    id=project, request=chunk, request_options=ONCE
                ),
            )
            created += int(getattr(response, "created", 0) or 0)
            log.debug("project %s: imported %d/%d predictions", project, start + len(chunk), len(predictions))
        return created

    def create_prediction(self, project: int, prediction: dict) -> int:
        """Create one prediction (`task`, `model_version`, `score`, `result`) in one call; its id.

        Label Studio answers this in a tenth of a second where an import call of any size takes
        seconds on a large project: the way to put a new queue head live.
        """
        task = int(prediction["task"])
        created = self.call(
            f"create a prediction for task {task}",
            lambda: self._sdk.predictions.create(
                task=task,
                project=project,
                result=prediction["result"],
                score=prediction["score"],
                model_version=prediction["model_version"],
                request_options=ONCE,
            ),
        )
        return int(created.id)

    def update_prediction(self, project: int, prediction_id: int, prediction: dict) -> None:
        """Give prediction `prediction_id` a new version, result and score in one call; its id stays.

        `task` and `project` go along: Label Studio validates a result against the project's form.
        A prediction that is gone raises StudioError with status 404.
        """
        self.call(
            f"update prediction {prediction_id}",
            lambda: self._sdk.predictions.update(
                prediction_id,
                task=int(prediction["task"]),
                project=project,
                result=prediction["result"],
                score=prediction["score"],
                model_version=prediction["model_version"],
            ),
        )

    def rename_prediction(self, project: int, prediction_id: int, version: str) -> None:
        """Give prediction `prediction_id` another version name, nothing else (Label Studio checks a
        result only when one is sent). A prediction that is gone raises StudioError with status 404."""
        self.call(
            f"rename prediction {prediction_id}",
            lambda: self._sdk.predictions.update(prediction_id, model_version=version),
        )

    def delete_prediction(self, project: int, prediction_id: int) -> None:
        """Delete one prediction (one short call, unlike a version's)."""
        self.call(f"delete prediction {prediction_id}", lambda: self._sdk.predictions.delete(prediction_id))

    def served_version(self, project: int) -> str | None:
        """The version name whose predictions the project shows and serves (one short read)."""
        return self._project(project, "model_version").model_version

    def serve_version(self, project: int, version: str) -> None:
        """Show `version`'s predictions and serve the lowest prediction score first."""
        settings = {"sampling": UNCERTAINTY_SAMPLING, "model_version": version}
        self.call("switch the model version", lambda: self._sdk.projects.update(id=project, **settings))

    def delete_version(self, project: int, version: str) -> None:
        """Delete all predictions of one model version (not in the SDK: raw HTTP). It holds Label
        Studio's database for as long as the version is large: only the benchmarks call it."""
        self._raw("DELETE", f"api/projects/{project}/model-versions/", {"model_version": version})

    def check(self) -> None:
        """Raise StudioError unless Label Studio answers and takes the token (who am I?)."""
        self.call("check the token", self._sdk.users.whoami)

    def backend_urls(self, project: int, user: str | None) -> list[str]:
        """The URLs of the project's connected ML backends whose basic-auth user is `user` (any, when
        None): where Label Studio itself calls this backend."""
        connected = self.call("list the connected backends", lambda: self._sdk.ml.list(project=project))
        return [ml.url for ml in connected if ml.url and (user is None or ml.basic_auth_user == user)]

    def authorize_webhooks(self, project: int, backend_host: str, authorization: str) -> int:
        """Make the project's webhooks to this backend carry our basic-auth header.

        Label Studio sends event webhooks without the ML backend's credentials. Ours are the ones
        to ``<backend>/webhook`` at `backend_host` (host:port as Label Studio addresses us); no
        other webhook ever gets the header. Returns how many of ours carry it now.
        """
        authorized = 0
        for hook in self.call("list webhooks", lambda: self._sdk.webhooks.list(project=str(project))):
            target = urlsplit(hook.url or "")
            if target.netloc != backend_host or not target.path.rstrip("/").endswith("/webhook"):
                continue
            headers = dict(hook.headers) if isinstance(hook.headers, dict) else {}
            if headers.get("Authorization") != authorization:
                headers["Authorization"] = authorization
                self._update_webhook(hook.id, headers)
            authorized += 1
        return authorized

    def _update_webhook(self, hook_id: int, headers: dict) -> None:
        self.call("update a webhook", lambda: self._sdk.webhooks.update(hook_id, headers=headers))

    # --- plumbing -----------------------------------------------------------------------------

    @property
    def sdk(self):
        """The label-studio-sdk client, for calls made through :meth:`call` (project set-up)."""
        return self._sdk

    def call(self, what: str, call):
        """Run an SDK call; a refusal or failure becomes a StudioError saying `what` failed, and why."""
        try:
            return call()
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            detail = f"HTTP {status}: {_reason(exc.body)}" if status else f"{type(exc).__name__}: {exc}"
            raise StudioError(
                self._scrub(f"Label Studio at {self.url} could not {what} ({detail})"), status
            ) from None

    def _raw(self, method: str, path: str, body: dict | None):
        wrapper = self._sdk._client_wrapper  # the SDK's authenticated httpx client
        response = self.call(
            f"{method} {path}", lambda: wrapper.httpx_client.request(path, method=method, json=body)
        )
        if response.status_code >= 400:
            message = f"Label Studio at {self.url} refused {method} /{path} (HTTP {response.status_code}: "
            raise StudioError(self._scrub(message + f"{response.text[:300]})"), response.status_code)
        return response

    def _scrub(self, message: str) -> str:
        return hide_credentials(message, self.url)  # a user:password@ in the URL: never in a message
