"""The one set of fakes: an in-memory Label Studio and a recording work queue.

`FakeStudio` implements `backend.studio.client.StudioAPI`; tests/test_fakes.py checks that its
methods have the protocol's signatures, as the real client's do. The real Label Studio is in
tests/e2e.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from backend.domain.tasks import Task
from backend.resources import label_config
from backend.studio.client import StudioError
from tests.helpers import study_form_result

STUDY_FORM = label_config("interview_coding")


class FakeStudio:
    """A Label Studio project in memory: tasks, annotations by users, predictions by version.

    `calls` records every write in order ("import", n) / ("create", 1) / ("serve", version) /
    ("delete", version), and every read of the annotated tasks ("read labels", n). A single create
    for a task it does not hold is refused (400), as is every one while `refuse_creates` is set;
    `drop` makes imports silently lose that many predictions (as Label Studio does with invalid
    ones); `while_listing` runs once a listing of unlabeled tasks is under way (another lane at
    work meanwhile).
    """

    def __init__(self, segments: Sequence[dict] = (), annotated: int = 0, *, config: str = STUDY_FORM):
        self.config = config
        self.all: dict[int, Task] = {}
        for segment in segments:
            self.add_task(segment["text"])
        for i, segment in enumerate(segments[:annotated]):
            self.annotate(i, segment["codes"], user=1, when="1")
        self.predictions: list[dict] = []
        self.calls: list[tuple[str, object]] = []
        self.drop = 0
        self.refuse_creates = False
        self.listings = 0  # listings of unlabeled tasks
        self.listed: list[tuple[bool, bool]] = []  # (annotated, data_only) of every listing
        self.while_listing: Callable[[], None] | None = None
        self.emails = {1: "Coder.A@example.org", 2: "coder.b@example.org"}
        self.ml_backends: list[tuple[str, str | None]] = []  # (url, basic-auth user) connected

    # --- test set-up -------------------------------------------------------------------------

    def add_task(self, text: str, **data) -> int:
        task_id = len(self.all)
        self.all[task_id] = Task(task_id, {"text": text, "question": "?", **data})
        return task_id

    def annotate(self, task_id: int, codes: list[str], *, user: int, when: str) -> None:
        task = self.all[task_id]
        annotation = {
            "id": 100 * user + task_id,
            "result": study_form_result(codes),
            "was_cancelled": False,
            "completed_by": user,
            "updated_at": when,
        }
        self.all[task_id] = Task(task_id, task.data, (*task.annotations, annotation))

    @property
    def served(self) -> list[str]:
        return [version for call, version in self.calls if call == "serve"]

    @property
    def deleted(self) -> list[str]:
        return [version for call, version in self.calls if call == "delete"]

    def unlabeled_ids(self) -> list[int]:
        return [task.id for task in self.all.values() if not task.annotations]

    # --- StudioAPI ---------------------------------------------------------------------------

    def label_config(self, project: int) -> str:
        return self.config

    def tasks(self, project: int, *, annotated: bool, data_only: bool = False) -> Iterator[Task]:
        chosen = [task for task in self.all.values() if bool(task.annotations) == annotated]
        self.listed.append((annotated, data_only))
        if annotated:
            self.calls.append(("read labels", len(chosen)))
        else:
            self.listings += 1
        for number, task in enumerate(chosen):
            if number == 1 and not annotated and self.while_listing:
                self.while_listing()
            yield Task(task.id, task.data) if data_only else task

    def user_emails(self) -> dict[int, str]:
        return dict(self.emails)

    def model_versions(self, project: int) -> list[str]:
        return sorted({p["model_version"] for p in self.predictions})

    def import_predictions(self, project: int, predictions: Sequence[dict]) -> int:
        self.calls.append(("import", len(predictions)))
        kept = list(predictions)[: len(predictions) - self.drop]
        self.predictions.extend(kept)
        return len(kept)

    def create_prediction(self, project: int, prediction: dict) -> None:
        self.calls.append(("create", 1))
        if prediction["task"] not in self.all or self.refuse_creates:
            raise StudioError(f"Label Studio refused the prediction: no task {prediction['task']}", 400)
        self.predictions.append(dict(prediction))

    def serve_version(self, project: int, version: str) -> None:
        self.calls.append(("serve", version))

    def delete_version(self, project: int, version: str) -> None:
        self.calls.append(("delete", version))
        self.predictions = [p for p in self.predictions if p["model_version"] != version]

    def backend_urls(self, project: int, user: str | None) -> list[str]:
        return [url for url, by in self.ml_backends if user is None or by == user]

    def authorize_webhooks(self, project: int, backend_host: str, authorization: str) -> int:
        self.calls.append(("authorize", backend_host))
        return 1


class RecordingQueue:
    """A work queue that records requests and runs nothing (for the HTTP layer and job tests).

    With `lanes` (a FileQueue) requests also leave their markers, and "what waits?" and "is a worker
    at it?" are answered by the markers and lane locks on disk.
    """

    def __init__(self, lanes=None) -> None:
        self.requests: list[tuple[str, str]] = []
        self.lanes = lanes

    def request(self, project: str, kind) -> None:
        self.requests.append((str(project), str(kind)))
        if self.lanes:
            self.lanes.put(project, kind)

    def pending(self, project: str, lane=None) -> list:
        return self.lanes.pending(project, lane) if self.lanes else []

    def busy(self, project: str, lane) -> bool:
        return self.lanes.busy(project, lane) if self.lanes else False
