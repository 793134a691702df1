"""Fault injection against a real Label Studio: the backend recovers from each fault, and no label is lost.

A real Label Studio 1.23.2 and the backend under gunicorn, with the 45 KB random model of
tests/fixtures (so a round takes a second or two and thirty faults fit in a few minutes), MODEL_DIR on
a small tmpfs of its own. At random points of head rounds, body rounds and imported-task rounds the
campaign SIGKILLs the worker, SIGKILLs and restarts the whole backend, restarts Label Studio in the
middle of a write-back, and fills MODEL_DIR to the last byte. After each fault one more annotation
comes (the next event) and, within a deadline, it checks:

- every annotation in Label Studio is in the training set of the round that follows (nothing lost);
- the current version wrote its whole queue head (WRITE_HEAD tasks, as in production a part of the
  pool: the rest keep older versions' predictions), every task the backend's map names holds one
  served prediction in Label Studio, and no task two served ones or more than two in all;
- `state.json` parses and names a version that exists;
- and, throughout, `/health` and `/predict` answer (but while the backend itself is down by design).

It prints a table: fault kind, count, how many hit a round in progress, recovered, seconds to recover.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from backend.devtools.local_studio import LocalLabelStudio, free_port
from backend.devtools.processes import BackendProcess
from backend.domain.versions import LIVE
from backend.resources import label_config
from backend.storage.layout import ProjectDir
from backend.storage.prediction_ids import PredictionIds
from tests.helpers import CODES, FIXTURES, connect_backend, study_form_result, wait_for

AUTH = ("faults", "faults-pass-1")
CONFIG = label_config("interview_coding")
RECOVERY_SECONDS = 180
# A version's queue head: a part of the pool, as in production. A head of every unlabeled task made
# each settle round write ~90 predictions, most of the campaign's 12 minutes on a CPU without AVX-512.
HEAD = 12
CAMPAIGN = (  # kind, count: 30 faults
    ("worker SIGKILL in a head round", 8),
    ("worker SIGKILL in a body round", 5),
    ("worker SIGKILL in an imported-task round", 5),
    ("backend SIGKILL and restart", 6),
    ("Label Studio restart mid write-back", 3),
    ("MODEL_DIR full", 3),
)


def processes(group: int, *words: str) -> list[int]:
    """Pids of live processes of process group `group` (one backend: the server and its workers,
    not another backend on the machine) whose command line holds every word."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = [part.decode(errors="replace") for part in cmdline.read_bytes().split(b"\0")]
            mine = os.getpgid(int(cmdline.parent.name)) == group
        except (OSError, ProcessLookupError):
            continue
        if mine and all(word in argv for word in words):
            found.append(int(cmdline.parent.name))
    return found


def prediction_version(prediction) -> str:
    return (prediction if isinstance(prediction, dict) else prediction.model_dump())["model_version"]


def kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class Backend(BackendProcess):
    """The backend under gunicorn (two workers) that the faults strike."""

    def kill(self) -> None:
        """SIGKILL the server and every worker it started (one process group), as a power cut would."""
        group = self.process.pid  # started in a session of its own: its pid is the group's id
        super().kill()
        wait_for(lambda: not processes(group, "backend.worker"), 30, "the workers to die with the server")

    def metrics(self, project: int) -> dict:
        return super().metrics().get(str(project), {})


class Availability(threading.Thread):
    """Asks /health and /predict twice a second; counts failures outside the windows it is told to skip."""

    def __init__(self, backend: Backend, project: int):
        super().__init__(daemon=True)
        self.backend, self.project = backend, project
        self.asked = self.failed = 0
        self.failures: list[str] = []
        self.paused = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        body = {
            "tasks": [{"id": 1, "data": {"text": "My knee hurts."}}],
            "project": f"{self.project}.1",
            "label_config": CONFIG,
        }
        while not self.done.is_set():
            if not self.paused.is_set():
                reason = self.ask("/health", lambda: httpx.get(f"{self.backend.url}/health", timeout=5))
                reason = reason or self.ask(
                    "/predict",
                    lambda: httpx.post(f"{self.backend.url}/predict", json=body, auth=AUTH, timeout=30),
                )
                if not self.paused.is_set():  # a fault window may have opened while we asked
                    self.asked += 1
                    if reason:
                        self.failed += 1
                        self.failures.append(reason)
            time.sleep(0.5)

    @staticmethod
    def ask(what: str, call) -> str | None:
        """None when the call answered 200, else what went wrong (and after how long)."""
        started = time.monotonic()
        try:
            status = call().status_code
            return None if status == 200 else f"{what}: HTTP {status}"
        except httpx.HTTPError as exc:
            return f"{what}: {type(exc).__name__} after {time.monotonic() - started:.1f} s"


@dataclass
class Outcome:
    kind: str
    recovered: bool
    seconds: float
    mid_round: bool
    note: str = ""


@dataclass
class Campaign:
    sdk: object
    studio: LocalLabelStudio
    backend: Backend
    project: int
    model_dir: Path
    texts: list[str]
    rng: random.Random = field(default_factory=lambda: random.Random(20261201))
    annotated: set[int] = field(default_factory=set)

    # --- Label Studio ---------------------------------------------------------------------------

    def tasks(self) -> list:
        return list(self.sdk.tasks.list(project=self.project, page_size=500, fields="all"))

    def annotate(self, count: int) -> None:
        unlabeled = [
            t.id
            for t in self.sdk.tasks.list(project=self.project, page_size=500)
            if t.id not in self.annotated
        ]
        for task_id in self.rng.sample(unlabeled, count):
            codes = self.rng.sample(CODES, self.rng.randint(1, 2))
            self.sdk.annotations.create(id=task_id, result=study_form_result(codes))
            self.annotated.add(task_id)

    def import_tasks(self, count: int) -> None:
        texts = [f"{self.rng.choice(self.texts)} ({self.rng.randint(0, 10**6)})" for _ in range(count)]
        self.sdk.projects.import_tasks(id=self.project, request=[{"text": t, "question": "?"} for t in texts])

    # --- the backend ----------------------------------------------------------------------------

    def metrics(self) -> dict:
        return self.backend.metrics(self.project)

    def backend_log_since(self, offset: int) -> str:
        with open(self.backend.log_path, errors="replace") as log:
            log.seek(offset)
            return log.read()

    def lane_busy(self, field_name: str, states: tuple[str, ...], timeout: float) -> bool:
        """Wait (up to `timeout`) until a lane's status is one of `states`; whether it was seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.metrics().get(field_name) in states:
                return True
            time.sleep(0.05)
        return False

    def problems(self, expect_body: bool = False) -> list[str]:
        """What is not recovered yet (empty: recovered). Label Studio is read only once the backend
        says its work is done: a listing of every task twice a second would load the CPU the
        recovery needs."""
        metrics = self.metrics()
        wrong = []
        if metrics.get("state") != "idle" or metrics.get("pending"):
            wrong.append(f"fast lane {metrics.get('state')}, pending {metrics.get('pending')}")
        current = metrics.get("current_version")
        if not current or metrics.get("predictions_complete") is not True:
            wrong.append(f"version {current} complete={metrics.get('predictions_complete')}")
        if wrong:
            return wrong
        tasks = self.tasks()
        annotated = sum(1 for t in tasks if any(not a.get("was_cancelled") for a in (t.annotations or [])))
        if metrics.get("labeled") != annotated:
            wrong.append(f"trained on {metrics.get('labeled')} of {annotated} annotated tasks")
        state_file = self.model_dir / str(self.project) / "state.json"
        try:
            state = json.loads(state_file.read_text())
            named = state.get("current_version")
            if not named or not (self.model_dir / str(self.project) / named / "version.json").exists():
                wrong.append(f"state.json names {named!r}, which does not exist")
        except (OSError, ValueError) as exc:
            wrong.append(f"state.json does not parse: {exc}")
        if self.sdk.projects.get(id=self.project).model_version != LIVE:
            wrong.append("Label Studio serves another name than the live one")
        crowded = [task.id for task in tasks if len(task.predictions or []) > 2]
        if crowded:
            wrong.append(f"tasks {crowded[:5]} hold more than two predictions")
        wrong += self.served_problems(tasks, current)
        # a body: kept, or judged and not kept (BODY_SELECTION, from 32 labeled: heads on the base body)
        body = metrics.get("body_version") or metrics.get("body_choice")
        if expect_body and (metrics.get("body_state") != "idle" or not body):
            wrong.append(f"body lane {metrics.get('body_state')}")
        return wrong

    def served_problems(self, tasks: list, current: str | None) -> list[str]:
        """What is wrong with the served predictions: every unlabeled task the backend's map names
        holds exactly one served prediction in Label Studio, no other task more than one (a write
        whose map a SIGKILL lost is adopted when a head next takes its task:
        TaskPredictions.look_up), and the current version's whole head is served (WRITE_HEAD, or
        every unlabeled task when fewer remain: its own tasks and the coders' reach written by it,
        an older head's deeper places by their writers) with its first places written by it."""
        live = PredictionIds(ProjectDir(self.model_dir, str(self.project))).live()
        unlabeled = [task for task in tasks if not task.annotations]
        for task in unlabeled:
            served = sum(1 for p in task.predictions or [] if prediction_version(p) == LIVE)
            if served > 1 or (task.id in live and served != 1):
                return [f"task {task.id} has {served} served predictions; the map names {live.get(task.id)}"]
        head = sum(1 for task in unlabeled if task.id in live)
        if head < min(HEAD, len(unlabeled)):
            return [f"{head} tasks are served, not {current}'s head of {min(HEAD, len(unlabeled))}"]
        if current not in live.values():
            return [f"{current} serves none of the tasks it wrote"]
        return []

    def recover(self, expect_body: bool = False) -> tuple[bool, str]:
        """The next event (one more annotation), then wait until recovered; (recovered, what was wrong)."""
        self.annotate(1)
        if expect_body:
            self.start_training()
        last: list[list[str]] = [[]]

        def recovered() -> bool:
            last[0] = self.problems(expect_body)
            return not last[0]

        try:
            wait_for(recovered, RECOVERY_SECONDS, "recovery", interval=0.5)
            return True, ""
        except TimeoutError:
            return False, "; ".join(last[0])

    def start_training(self) -> None:
        body = {"action": "START_TRAINING", "project": {"id": self.project}}
        httpx.post(f"{self.backend.url}/webhook", json=body, auth=AUTH, timeout=10).raise_for_status()

    # --- the faults -----------------------------------------------------------------------------

    def kill_worker(self, lane: str, field_name: str, states: tuple[str, ...], delay: float, start) -> bool:
        start()
        mid_round = self.lane_busy(field_name, states, timeout=30)
        time.sleep(self.rng.uniform(0, delay))
        mid_round = mid_round and self.metrics().get(field_name) in states
        kill(processes(self.backend.process.pid, "backend.worker", str(self.project), lane))
        return mid_round

    def inject(self, kind: str, availability: Availability) -> bool:
        """Inject one fault of `kind`; returns whether it struck a round in progress."""
        if kind == "worker SIGKILL in a head round":
            return self.kill_worker("fast", "state", ("training",), 1.5, lambda: self.annotate(2))
        if kind == "worker SIGKILL in a body round":
            return self.kill_worker("body", "body_state", ("training",), 3.0, self.start_training)
        if kind == "worker SIGKILL in an imported-task round":
            return self.kill_worker("fast", "state", ("predicting",), 0.3, lambda: self.import_tasks(3))
        if kind == "backend SIGKILL and restart":
            self.annotate(2)
            mid_round = self.lane_busy("state", ("training",), timeout=self.rng.uniform(0.2, 4))
            availability.paused.set()
            self.backend.kill()
            self.backend.start()
            availability.paused.clear()
            return mid_round
        if kind == "Label Studio restart mid write-back":
            self.annotate(2)
            mid_round = self.lane_busy("state", ("training",), timeout=30)
            time.sleep(self.rng.uniform(0, 1.0))
            self.studio.stop(remove_data=False)
            self.studio.start()
            self.sdk = type(self.sdk)(
                base_url=self.studio.url, api_key=self.studio.token
            )  # fresh connections
            return mid_round
        if kind == "MODEL_DIR full":
            filler = self.model_dir / "filler"
            subprocess.run(
                ["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True
            )  # until ENOSPC
            logged = self.backend.log_path.stat().st_size
            self.annotate(2)
            try:  # the request's worker meets the full disk (its state cannot even be written)
                struck = wait_for(lambda: self.backend_log_since(logged).count("No space left"), 60, "ENOSPC")
            except TimeoutError:
                struck = 0
            filler.unlink()
            return bool(struck)
        raise AssertionError(kind)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory, label_studio_executable, seed_studio_dir):
    if os.geteuid() != 0:
        pytest.skip("the fault campaign mounts a tmpfs for MODEL_DIR: run it as root (CI does)")
    from label_studio_sdk.client import LabelStudio

    workdir = tmp_path_factory.mktemp("faults")
    model_dir = workdir / "models"
    model_dir.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(model_dir)], check=True)
    studio_dir = seed_studio_dir(workdir / "label-studio")
    studio = LocalLabelStudio(label_studio_executable, data_dir=studio_dir).start()
    env = {
        **os.environ,
        "MODEL_NAME": str(FIXTURES / "tiny-model"),
        "MAX_LENGTH": "32",
        "HF_HUB_OFFLINE": "1",
        "SETFIT_NUM_ITERATIONS": "1",
        "SETFIT_MAX_STEPS": "2",
        "MIN_ANNOTATIONS_TO_TRAIN": "4",
        "WRITE_FIRST": "5",
        "WRITE_HEAD": str(HEAD),
        "WRITE_BY_IMPORT": "true",  # a head's new tasks in import calls, as compose runs it
        "BODY_RETRAIN_EVERY": "1000",
        "WORKER_IDLE_SECONDS": "20",
        "MODEL_DIR": str(model_dir),
        "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}",  # not on the disk that fills up
        "LABEL_STUDIO_URL": studio.url,
        "LABEL_STUDIO_API_KEY": studio.token,
        "BASIC_AUTH_USER": AUTH[0],
        "BASIC_AUTH_PASS": AUTH[1],
        "LOG_LEVEL": "INFO",
    }
    backend = Backend(free_port(), env, AUTH, workers=2, log_path=workdir / "backend.log").start()
    sdk = LabelStudio(base_url=studio.url, api_key=studio.token)
    texts = [json.loads(line)["text"] for line in (FIXTURES / "segments.jsonl").read_text().splitlines()]
    project = sdk.projects.create(title="faults", label_config=CONFIG).id
    rows = [{"text": f"{text} ({n})", "question": "?"} for n in range(3) for text in texts]
    sdk.projects.import_tasks(id=project, request=rows)
    assert connect_backend(studio, project, backend.url, AUTH), "the webhook never got basic auth"
    run = Campaign(sdk, studio, backend, project, model_dir, texts)
    run.annotate(4)
    ok, why = run.recover()
    assert ok, f"the first version never settled: {why}"
    yield run
    backend.stop()
    studio.stop()
    subprocess.run(["umount", "-l", str(model_dir)], check=False)
    print(backend.log_path.read_text()[-3000:])


def test_every_injected_fault_is_recovered_with_no_label_lost(campaign, capsys):
    availability = Availability(campaign.backend, campaign.project)
    availability.start()
    faults = [kind for kind, count in CAMPAIGN for _ in range(count)]
    campaign.rng.shuffle(faults)
    outcomes = []
    for kind in faults:
        started = time.monotonic()
        mid_round = campaign.inject(kind, availability)
        recovered, why = campaign.recover(expect_body="body" in kind)
        outcomes.append(Outcome(kind, recovered, time.monotonic() - started, mid_round, why))
    availability.done.set()
    table = report(outcomes, availability)
    with capsys.disabled():
        print("\n" + table)
    report_file = os.environ.get("FAULTS_REPORT")
    if report_file:
        Path(report_file).write_text(table + "\n")
    assert all(o.recovered for o in outcomes), [(o.kind, o.note) for o in outcomes if not o.recovered]
    assert availability.failed == 0, availability.failures[:5]
    assert len(outcomes) >= 30


def report(outcomes: list[Outcome], availability: Availability) -> str:
    lines = [
        "| fault | count | struck a round in progress | recovered | seconds to recover (median, max) |",
        "|---|---|---|---|---|",
    ]
    for kind, _ in CAMPAIGN:
        mine = [o for o in outcomes if o.kind == kind]
        seconds = sorted(o.seconds for o in mine)
        lines.append(
            f"| {kind} | {len(mine)} | {sum(o.mid_round for o in mine)} | "
            f"{sum(o.recovered for o in mine)} | {seconds[len(seconds) // 2]:.0f}, {seconds[-1]:.0f} |"
        )
    lines.append(
        f"\n/health and /predict asked {availability.asked} times outside backend restarts: "
        f"{availability.failed} failed."
    )
    return "\n".join(lines)
