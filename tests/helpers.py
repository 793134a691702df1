"""Helpers shared by unit and end-to-end tests (and the benchmarks)."""

import time
from pathlib import Path

REPO = Path(__file__).parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
CODES = ["physical_health", "mental_health", "daily_functioning", "health_unspecific", "freq_mentioned"]
DIMENSIONS = ("physical_health", "mental_health", "daily_functioning", "health_unspecific")


def study_form_result(codes: list[str]) -> list[dict]:
    """A Label Studio annotation result for the study's form (interview_coding.xml) from study codes."""
    dimension = [code for code in codes if code in DIMENSIONS] or ["none"]
    frequency = ["freq_mentioned" if "freq_mentioned" in codes else "freq_not_mentioned"]
    return [
        {"from_name": "dimension", "to_name": "text", "type": "choices", "value": {"choices": dimension}},
        {"from_name": "frequency", "to_name": "text", "type": "choices", "value": {"choices": frequency}},
    ]


def wait_for(condition, timeout: float, what: str, interval: float = 0.5):
    """Poll `condition` until it returns something true (returned), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"waited {timeout:.0f} s for {what}")


def connect_backend(studio, project: int, backend_url: str, auth: tuple[str, str]) -> bool:
    """Connect the backend to a project of `studio` (a LocalLabelStudio) the way `init` does; returns
    whether the project's webhook got the backend's basic auth."""
    from backend.studio.client import StudioClient
    from backend.studio.setup import ProjectSetter

    setter = ProjectSetter(StudioClient(studio.url, studio.token))
    return setter.connect(project, backend_url, auth).webhook_authorized


def written_by(studio, model_dir, version: str, project: str = "1") -> list[dict]:
    """The predictions of a fake Label Studio that serve `version`'s suggestions: under the one
    served name, on the tasks the backend's live set says `version` wrote (studio/writeback.py)."""
    from backend.domain.versions import LIVE
    from backend.storage.layout import ProjectDir
    from backend.storage.prediction_ids import PredictionIds

    live = PredictionIds(ProjectDir(model_dir, project)).live()
    return [p for p in studio.predictions if p["model_version"] == LIVE and live.get(p["task"]) == version]


def project_context(studio, settings, model_dir, queue=None, project: str = "1"):
    """A project's context as a worker builds it, on a fake Label Studio and a throwaway MODEL_DIR."""
    from backend.storage.state import StateStore
    from backend.storage.versions import ModelStore
    from backend.worker.context import ProjectContext
    from tests.fakes import RecordingQueue

    store = ModelStore(model_dir)
    states = StateStore(store.layout.project(project))
    return ProjectContext(project, studio, states, store, queue or RecordingQueue(), settings.loop)
