"""The one set of fakes: an in-memory Label Studio and a recording work queue.

`FakeStudio` implements `backend.studio.client.StudioAPI`; tests/test_fakes.py checks that its
methods have the protocol's signatures, as the real client's do. The real Label Studio is in
tests/e2e.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence

from backend.domain.tasks import Task
from backend.resources import label_config
from backend.studio.client import LOOK_UP_PAGE, StudioError
from tests.helpers import study_form_result

STUDY_FORM = label_config("interview_coding")


class FakeStudio:
    """A Label Studio project in memory: tasks, annotations by users, predictions with their ids.

    `calls` records every write in order ("create", 1) / ("import", n) / ("update", prediction id) /
    ("rename", prediction id) / ("serve", version) / ("delete", prediction id), every read of
    tasks' predictions ("look up", tasks in the read) and every read of the annotated tasks
    ("read labels", n). A single create or update for a task it does not hold is refused (400), as
    is every one while `refuse_creates` is set; an update or rename of a prediction it does not
    hold is refused with 404. `serve_version` sets `model_version`, the project's. `while_listing`
    runs once a listing of unlabeled tasks is under way (another lane at work meanwhile).
    """

    def __init__(self, segments: Sequence[dict] = (), annotated: int = 0, *, config: str = STUDY_FORM):
        self.config = config
        self.all: dict[int, Task] = {}
        for segment in segments:
            self.add_task(segment["text"])
        for i, segment in enumerate(segments[:annotated]):
            self.annotate(i, segment["codes"], user=1, when="1")
        self.predictions: list[dict] = []  # each with its "id", in the order they were created
        self.calls: list[tuple[str, object]] = []
        self.refuse_creates = False
        self.listings = 0  # listings of unlabeled tasks
        self.listed: list[tuple[bool, bool]] = []  # (annotated, data_only) of every listing
        self.while_listing: Callable[[], None] | None = None
        self.emails = {1: "Coder.A@example.org", 2: "coder.b@example.org"}
        self.ml_backends: list[tuple[str, str | None]] = []  # (url, basic-auth user) connected
        self.model_version: str | None = None  # the project's, as `serve_version` set it
        self._next_id = 1000

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
    def deleted(self) -> list[int]:
        return [prediction for call, prediction in self.calls if call == "delete"]

    def of_version(self, version: str) -> list[dict]:
        return [p for p in self.predictions if p["model_version"] == version]

    def most_per_task(self) -> int:
        """The most predictions any one task holds."""
        counts = Counter(p["task"] for p in self.predictions)
        return max(counts.values(), default=0)

    def hold(self, prediction: dict) -> int:
        """A prediction written before the test (by an older backend, another tool); its id."""
        self._next_id += 1
        self.predictions.append({**prediction, "id": self._next_id})
        return self._next_id

    def queue(self) -> list[int]:
        """The tasks Label Studio's Uncertainty sampling would serve, in order: the unlabeled ones
        with a prediction of the project's version, by score, lowest first."""
        unlabeled = set(self.unlabeled_ids())
        current = [p for p in self.of_version(self.model_version or "") if p["task"] in unlabeled]
        return [p["task"] for p in sorted(current, key=lambda p: p["score"])]

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

    def task_count(self, project: int) -> int:
        return len(self.all)

    def user_emails(self) -> dict[int, str]:
        return dict(self.emails)

    def predictions_of(self, project: int, tasks: Collection[int]) -> dict[int, list[tuple[int, str]]]:
        """One read per LOOK_UP_PAGE tasks, as Label Studio's listing of selected tasks."""
        wanted = sorted(tasks)
        for start in range(0, len(wanted), LOOK_UP_PAGE):
            self.calls.append(("look up", len(wanted[start : start + LOOK_UP_PAGE])))
        held = {task: [] for task in wanted}
        for prediction in self.predictions:
            if prediction["task"] in held:
                held[prediction["task"]].append((prediction["id"], prediction["model_version"]))
        return held

    def create_prediction(self, project: int, prediction: dict) -> int:
        self.calls.append(("create", 1))
        self._refuse(prediction)
        return self.hold(prediction)

    def import_predictions(self, project: int, predictions: Sequence[dict]) -> int:
        """One import call: refused (400) when a task is not in the project; while `refuse_creates`
        is set, every prediction dropped silently, as Label Studio drops one that does not fit."""
        self.calls.append(("import", len(predictions)))
        if any(prediction["task"] not in self.all for prediction in predictions):
            raise StudioError("Label Studio refused the import: a task is not in the project", 400)
        if self.refuse_creates:
            return 0
        for prediction in predictions:
            self.hold(prediction)
        return len(predictions)

    def update_prediction(self, project: int, prediction_id: int, prediction: dict) -> None:
        self.calls.append(("update", prediction_id))
        self._refuse(prediction)
        held = next((p for p in self.predictions if p["id"] == prediction_id), None)
        if held is None:
            raise StudioError(f"Label Studio has no prediction {prediction_id}", 404)
        held.update({key: value for key, value in prediction.items() if key != "id"})

    def rename_prediction(self, project: int, prediction_id: int, version: str) -> None:
        self.calls.append(("rename", prediction_id))
        held = next((p for p in self.predictions if p["id"] == prediction_id), None)
        if held is None:
            raise StudioError(f"Label Studio has no prediction {prediction_id}", 404)
        held["model_version"] = version

    def delete_prediction(self, project: int, prediction_id: int) -> None:
        self.calls.append(("delete", prediction_id))
        self.predictions = [p for p in self.predictions if p["id"] != prediction_id]

    def served_version(self, project: int) -> str | None:
        return self.model_version

    def serve_version(self, project: int, version: str) -> None:
        self.calls.append(("serve", version))
        self.model_version = version

    def _refuse(self, prediction: dict) -> None:
        if prediction["task"] not in self.all or self.refuse_creates:
            raise StudioError(f"Label Studio refused the prediction: no task {prediction['task']}", 400)

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
