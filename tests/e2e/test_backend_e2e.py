"""The product, end to end: a real Label Studio 1.23.2 and the backend under gunicorn with basic auth.

One project lives through a story: connect → annotate → the first version orders the queue → a
burst of annotations → imported tasks → a second coder → ten more annotations (thirty in all) → a
restart; all along, a watcher reads every task's predictions from Label Studio twice a second.
Each step runs once, when the first test that needs it asks for it, and keeps what it observed;
so every test can run alone or in any order, and asserts on what its step saw.

The story is told twice: with the embedded queue (worker processes of the server's host), and once
more with REDIS_URL, where the server and two `coding-backend worker`s run separately, each in a
working directory of its own, sharing only the model store and a real Redis server; there a worker
is also killed in the middle of a round.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from functools import cached_property
from pathlib import Path

import httpx
import pytest

from backend.devtools.local_studio import free_port
from backend.devtools.processes import BackendProcess, WorkerProcess
from backend.domain.versions import LIVE
from backend.resources import label_config
from backend.storage.layout import ProjectDir
from backend.storage.prediction_ids import PredictionIds
from tests.e2e.conftest import backend_env
from tests.helpers import CODES, FIXTURES, study_form_result, wait_for

CONFIG = label_config("interview_coding")
AUTH = ("lead", "backend-pass")
ROUND_TIMEOUT = 240


class Backend(BackendProcess):
    """The backend under gunicorn with two workers, as a lead runs it."""

    def metrics(self, project: int) -> dict:
        return self.metrics_all().get(str(project), {})

    def metrics_all(self) -> dict:
        return super().metrics()


class PredictionWatch:
    """Reads every task's predictions from Label Studio every `interval` seconds, in a thread of its
    own, and keeps the most any one task held (and which task, and its predictions' versions)."""

    def __init__(self, url: str, token: str, project: int, interval: float = 0.5):
        from label_studio_sdk.client import LabelStudio

        self.sdk, self.project, self.interval = LabelStudio(base_url=url, api_key=token), project, interval
        self.peak, self.worst, self.reads = 0, None, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PredictionWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                held = self.sdk.predictions.list(project=self.project)
            except Exception:  # Label Studio busy: the next read counts
                continue
            per_task = Counter(p.task for p in held)
            self.reads += 1
            task, most = per_task.most_common(1)[0] if per_task else (None, 0)
            if most > self.peak:
                self.peak = most
                self.worst = (task, [p.model_version for p in held if p.task == task])


class Story:
    """The project's life; each step is a cached property that runs the steps before it first."""

    def __init__(self, sdk, ls, backend: Backend, project: int, codes: dict, segments: list, model_dir: Path):
        self.sdk, self.ls, self.backend, self.project = sdk, ls, backend, project
        self.codes, self.segments, self.model_dir = codes, segments, model_dir
        self.annotated: list[int] = []
        self.workers: list[WorkerProcess] = []  # with REDIS_URL: the hosts' workers
        self.watch = PredictionWatch(ls.url, ls.token, project).start()

    # --- helpers ----------------------------------------------------------------------------------

    def annotate(self, task_ids) -> None:
        for task_id in task_ids:
            self.sdk.annotations.create(id=task_id, result=study_form_result(self.codes[task_id]))
            self.annotated.append(task_id)

    def user(self, email: str, username: str, password: str):
        """A Label Studio user: made once per Label Studio (the story is told twice on SQLite's)."""
        found = [user for user in self.sdk.users.list() if user.email == email]
        return found[0] if found else self.sdk.users.create(email=email, username=username, password=password)

    def current_predictions(self) -> dict[int, list[dict]]:
        """Unlabeled task id → its predictions, straight from Label Studio."""
        tasks = self.sdk.tasks.list(project=self.project, page_size=200, fields="all")
        return {
            t.id: [p if isinstance(p, dict) else p.model_dump() for p in (t.predictions or [])]
            for t in tasks
            if t.id not in self.annotated
        }

    def metrics(self) -> dict:
        return self.backend.metrics(self.project)

    def live(self) -> dict[int, str]:
        """The backend's live set: each task whose prediction Label Studio serves (under `LIVE`) →
        the internal version that wrote it."""
        return PredictionIds(ProjectDir(self.model_dir, str(self.project))).live()

    def logs(self) -> str:
        """What the server and the workers logged (with REDIS_URL, rounds log in the workers)."""
        return "".join(process.log_path.read_text() for process in [self.backend, *self.workers])

    def train_rounds(self) -> list[dict]:
        return [r for r in self.metrics().get("rounds", []) if r["kind"] == "train"]

    def settled(self, version_not: str | None = None) -> dict | None:
        """The metrics once a version other than `version_not` serves and no work waits."""
        metrics = self.metrics()
        current = metrics.get("current_version")
        done = current and current != version_not and metrics["state"] == "idle" and not metrics["pending"]
        return metrics if done else None

    # --- the steps --------------------------------------------------------------------------------

    @cached_property
    def connected(self) -> list:
        """The backend is connected; its webhook carries basic auth (the hooks that do)."""
        self.sdk.ml.create(
            project=self.project,
            url=self.backend.url,
            title="coding-backend",
            auth_method="BASIC_AUTH",
            basic_auth_user=AUTH[0],
            basic_auth_pass=AUTH[1],
        )
        auth = "Basic " + base64.b64encode(f"{AUTH[0]}:{AUTH[1]}".encode()).decode()

        def authorized():
            hooks = self.sdk.webhooks.list(project=str(self.project))
            return [
                h
                for h in hooks
                if h.url.endswith("/webhook") and (h.headers or {}).get("Authorization") == auth
            ]

        return wait_for(authorized, 60, "the webhook to carry basic auth")

    @cached_property
    def encoded_early(self) -> dict:
        """Connecting the backend has it encode the pool before anyone annotates."""
        assert self.connected
        return wait_for(
            lambda: self.metrics().get("pool_encoded") and self.metrics(), 180, "the pool encoded"
        )

    @cached_property
    def first_version(self) -> dict:
        """Ten annotations train the first version; what Label Studio showed right after."""
        assert self.encoded_early
        self.annotate(sorted(self.codes)[:10])

        def first_version_done():
            metrics = self.metrics()
            return metrics.get("current_version") and metrics["state"] == "idle" and metrics

        metrics = wait_for(first_version_done, ROUND_TIMEOUT, "the first model version")
        headers = {"Authorization": f"Token {self.ls.token}"}
        served = httpx.get(f"{self.ls.url}/api/projects/{self.project}/next", headers=headers, timeout=30)
        return {
            "metrics": metrics,
            "predictions": self.current_predictions(),
            "live": self.live(),
            "next": served,
            "project": self.sdk.projects.get(id=self.project),
        }

    @cached_property
    def burst(self) -> dict:
        """Six annotations in quick succession: the rounds they led to and the predictions after."""
        first = self.first_version["metrics"]["current_version"]
        before = len(self.train_rounds())
        self.annotate(sorted(self.codes)[10:16])
        metrics = wait_for(lambda: self.settled(version_not=first), ROUND_TIMEOUT, "the burst to be trained")
        rounds = self.train_rounds()
        return {
            "rounds": rounds,
            "burst": rounds[before:],
            "metrics": metrics,
            "predictions": self.current_predictions(),
            "live": self.live(),
        }

    @cached_property
    def imported(self) -> bool:
        """Three tasks imported after the burst get predictions of the serving version."""
        assert self.burst
        new_texts = [s["text"] + " (follow-up)" for s in self.segments[30:33]]
        self.sdk.projects.import_tasks(
            id=self.project, request=[{"text": text, "question": "?"} for text in new_texts]
        )

        def all_predicted():  # by the version serving now: a round may go live meanwhile and write over
            current, predictions = self.metrics()["current_version"], self.current_predictions()
            live = self.live()
            return len(predictions) == 17 and all(
                live.get(task) == current and any(p["model_version"] == LIVE for p in items)
                for task, items in predictions.items()
            )

        return wait_for(all_predicted, 120, "predictions for the imported tasks")

    @cached_property
    def second_coder(self) -> dict:
        """Coder B re-codes four of coder A's tasks and drops physical_health on one of them."""
        assert self.imported
        coder_b = self.user("coder.b@example.org", "coder_b", "coder-b-pass-1")
        overlap = [sorted(self.codes)[i] for i in (0, 1, 8, 9)]
        before = len(self.train_rounds())
        for task_id in overlap:
            codes = [c for c in self.codes[task_id] if not (task_id == overlap[1] and c == "physical_health")]
            self.sdk.annotations.create(id=task_id, result=study_form_result(codes), completed_by=coder_b.id)

        def agreement_measured():
            metrics = self.metrics()
            done = len(self.train_rounds()) > before and metrics["state"] == "idle" and not metrics["pending"]
            return done and (metrics.get("agreement") or {}).get("tasks") == 4 and metrics

        metrics = wait_for(agreement_measured, ROUND_TIMEOUT, "a round that measures agreement")
        return {"overlap": overlap, "metrics": metrics}

    @cached_property
    def worker_killed(self) -> dict:
        """With REDIS_URL: the worker that fine-tunes bodies is killed in the middle of a body round, and
        a new one is started on its host; the round was abandoned, not lost."""
        assert self.second_coder
        from backend.storage.state import now

        wait_for(self.settled, ROUND_TIMEOUT, "the work in flight to finish")
        body = {"action": "START_TRAINING", "project": {"id": self.project}}
        assert httpx.post(f"{self.backend.url}/webhook", json=body, auth=AUTH, timeout=10).status_code == 202
        wait_for(
            lambda: self.metrics()["body_state"] == "training", 120, "a body round to start", interval=0.1
        )
        host_b = self.workers[1]
        host_b.kill()
        killed_at = now()
        import redis

        lock = redis.Redis.from_url(self.backend.env["REDIS_URL"]).pttl(
            f"coding-backend:lane:{self.project}:body"
        )
        self.workers[1] = WorkerProcess(host_b.env, host_b.queues, host_b.cwd, host_b.log_path).start()

        def redone():
            metrics = self.metrics()
            done = self.body_rounds(since=killed_at) and metrics["body_state"] == "idle"
            return done and not metrics["pending"] and metrics

        metrics = wait_for(redone, ROUND_TIMEOUT, "the body round to be done again")
        return {"lock_ttl_ms": lock, "metrics": metrics, "bodies": self.body_rounds(since=killed_at)}

    @cached_property
    def thirty_annotations(self) -> dict:
        """Coder A codes ten more tasks, one at a time, each once its round went live: thirty
        annotations in all (26 by A, 4 by B)."""
        assert self.second_coder
        for task_id in sorted(self.codes)[16:26]:
            serving = wait_for(self.settled, ROUND_TIMEOUT, "the work in flight to finish")["current_version"]
            self.annotate([task_id])
            wait_for(lambda v=serving: self.settled(version_not=v), ROUND_TIMEOUT, "its round to go live")
        return {"annotations": len(self.annotated) + len(self.second_coder["overlap"])}

    def body_rounds(self, since: str) -> list[dict]:
        return [
            r for r in self.metrics().get("rounds", []) if r["kind"] == "body" and r["started_at"] > since
        ]


@pytest.fixture(scope="module", params=["embedded", "redis"])
def story(request, label_studio, model_path, tmp_path_factory):
    from label_studio_sdk.client import LabelStudio

    sdk = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
    workdir = tmp_path_factory.mktemp("backend")
    port = free_port()
    extra = {}
    if request.param == "redis":
        if label_studio.database != "sqlite":
            pytest.skip("the story is told once more with REDIS_URL, on SQLite")
        redis_url = request.getfixturevalue("redis_url")
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        # ... and with every prediction written one call at a time
        extra = {"REDIS_URL": redis_url, "REDIS_LOCK_SECONDS": "6", "WRITE_BY_IMPORT": "false"}
    story_settings = {
        "MIN_ANNOTATIONS_TO_TRAIN": "8",
        "CODER_IDENTITIES": "email",  # the assertions name the coders
    }
    env = backend_env(label_studio, model_path, workdir, AUTH, **story_settings, **extra)
    backend = Backend(port, env, AUTH, workers=2, log_path=workdir / "backend.log", cwd=workdir / "web")
    backend.start()
    segments = [json.loads(line) for line in (FIXTURES / "segments.jsonl").read_text().splitlines()]
    project = sdk.projects.create(title="e2e coding", label_config=CONFIG)
    sdk.projects.import_tasks(
        id=project.id, request=[{"text": s["text"], "question": "How are you?"} for s in segments[:30]]
    )
    tasks = sorted(sdk.tasks.list(project=project.id, page_size=100), key=lambda t: t.id)
    codes = {task.id: segment["codes"] for task, segment in zip(tasks, segments, strict=False)}
    story = Story(sdk, label_studio, backend, project.id, codes, segments, workdir / "models")
    if request.param == "redis":  # a CPU host for the coders' rounds, another that also fine-tunes bodies
        story.workers = [
            WorkerProcess(env, "fast,predict", workdir / "host-a", workdir / "worker-a.log").start(),
            WorkerProcess(env, "body,fast,predict", workdir / "host-b", workdir / "worker-b.log").start(),
        ]
    yield story
    story.watch.stop()
    for worker in story.workers:
        worker.stop()
    backend.stop()
    print(backend.log_path.read_text()[-5000:])
    for worker in story.workers:
        print(worker.log_path.read_text()[-3000:])


def test_connecting_the_backend_makes_its_webhook_carry_basic_auth(story):
    assert story.connected


def test_connecting_the_backend_encodes_the_pool_before_anyone_annotates(story):
    metrics = story.encoded_early
    assert metrics["pool_encoded"]["body"] == "base" and metrics["pool_encoded"]["segments"] == 30
    assert metrics["current_version"] is None and metrics["body_state"] == "idle"
    assert metrics["codebook_start"] is None, "COLD_START=none (the default) keeps Label Studio's order"


def test_annotations_train_a_version_that_orders_the_queue(story):
    seen = story.first_version
    version = seen["metrics"]["current_version"]
    assert seen["metrics"]["labeled"] >= 8

    predictions = seen["predictions"]
    assert len(predictions) == 20
    for task_id, items in predictions.items():
        mine = [p for p in items if p["model_version"] == LIVE]
        assert len(mine) == 1, f"task {task_id} has {len(mine)} served predictions"
        assert seen["live"].get(task_id) is not None, "the backend knows which version wrote it"
        assert {r["from_name"] for r in mine[0]["result"]} == {"dimension", "frequency"}
        assert {r["type"] for r in mine[0]["result"]} == {"choices"}, "no evidence tag: no regions"
        check_none_of_these(mine[0]["result"])

    assert seen["project"].sampling == "Uncertainty sampling"
    assert seen["project"].model_version == LIVE, "one name served for good; the version is internal"

    scores = {task_id: items[0]["score"] for task_id, items in predictions.items()}
    # a first round that began before the tenth annotation is followed by another, which rewrites
    # the older head only as deep as coders reach before the next version (writeback.for_coders)
    first_place = min(scores, key=scores.get)
    assert seen["live"][first_place] == version, "the version serving now wrote the first place"
    most_informative = {task_id for task_id, score in scores.items() if score == min(scores.values())}
    assert seen["next"].status_code == 200
    assert seen["next"].json()["id"] in most_informative


def check_none_of_these(result: list[dict]) -> None:
    """The study form's "None of these" and frequency "No" are answers, not codes: a prediction
    checks "none" alone or not at all, and answers the frequency question one way or the other."""
    chosen = {item["from_name"]: item["value"]["choices"] for item in result}
    assert chosen["dimension"] and ("none" not in chosen["dimension"] or chosen["dimension"] == ["none"])
    assert chosen["frequency"] in (["freq_mentioned"], ["freq_not_mentioned"])


def test_a_burst_of_annotations_never_overlaps_rounds_and_each_task_holds_one_current_prediction(story):
    seen = story.burst
    # never more rounds than annotations; how many coalesce depends on how fast Label Studio takes
    # them against a round's second (tests/queue/test_scheduler.py shows coalescing itself)
    assert 1 <= len(seen["burst"]) <= 6, seen["burst"]
    spans = sorted((r["started_at"], r["finished_at"]) for r in seen["rounds"])
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))
    assert all(r["outcome"] == "ok" for r in seen["rounds"])

    current = seen["metrics"]["current_version"]
    assert all(len(items) == 1 for items in seen["predictions"].values()), "one prediction per task"
    versions = {p["model_version"] for items in seen["predictions"].values() for p in items}
    assert versions == {LIVE}, "the queue head (every unlabeled task here) was updated in place"
    queue = sorted(seen["predictions"], key=lambda task: seen["predictions"][task][0]["score"])
    writers = [seen["live"].get(task) for task in queue]
    assert None not in writers, "each served prediction written by a version of the backend's"
    assert writers[0] == current, "the version serving now wrote the first place Label Studio serves"


def test_rounds_after_the_first_train_on_what_the_webhooks_brought(story):
    """Label Studio's webhooks carry the annotation and its task: the fast loop trains on them without
    reading every annotation first, and the full read once the version is live finds nothing missed."""
    seen = story.burst
    assert seen["metrics"]["labeled"] == 16
    log = story.logs()
    assert "annotation(s) from webhooks; a full read follows" in log
    assert "differ from Label Studio" not in log and "labels not reconciled" not in log


def test_newly_imported_tasks_get_predictions(story):
    assert story.imported


def test_a_second_coder_on_overlapping_tasks_gives_agreement_everywhere(story):
    """physical_health, A: 1 1 0 0, B: 1 0 0 0 -> agreement 3/4, Cohen's kappa 1/2, Krippendorff's alpha
    8/15 (worked out in tests/domain/test_agreement.py); mental_health, A = B = 0 0 1 1 -> all 1."""
    seen = story.second_coder
    expected = [
        ["physical_health"],
        ["physical_health"],
        ["mental_health", "freq_mentioned"],
        ["mental_health"],
    ]
    assert [story.codes[t] for t in seen["overlap"]] == expected
    metrics = seen["metrics"]
    pair = f"{story.ls.username} | coder.b@example.org"
    physical = metrics["agreement"]["codes"]["physical_health"]
    assert physical["percent_agreement"] == pytest.approx(3 / 4)
    assert physical["cohen_kappa"][pair] == {"kappa": pytest.approx(0.5), "units": 4}
    assert physical["krippendorff_alpha"] == pytest.approx(8 / 15)
    mental = metrics["agreement"]["codes"]["mental_health"]
    assert (mental["percent_agreement"], mental["krippendorff_alpha"]) == (1.0, 1.0)
    assert metrics["coders"] == {story.ls.username: 16, "coder.b@example.org": 4}
    assert metrics["labeled"] == 16 and metrics["label_counts"]["physical_health"] >= 7
    assert set(metrics["label_counts"]) == set(CODES)  # "none" and "No" are answers, not codes
    assert metrics["quality"]["codes"]["physical_health"]["f1"] is not None
    assert 14 <= metrics["stopping"]["tasks_compared"] <= 17  # the previous round's pool
    model = metrics["model_agreement"]  # the model as one more coder, with each coder on what they coded
    coders = {story.ls.username: 16, "coder.b@example.org": 4}
    assert {coder: figures["tasks"] for coder, figures in model["with"].items()} == coders
    assert all(-1 <= figures["overall"]["kappa"] <= 1 for figures in model["with"].values())

    command = [sys.executable, "-m", "backend.cli", "agreement", "--project", str(story.project), "--json"]
    env = {
        **os.environ,
        "LABEL_STUDIO_URL": story.ls.url,
        "LABEL_STUDIO_API_KEY": story.ls.token,
        "CODER_IDENTITIES": "email",
    }
    printed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(printed.stdout) == metrics["agreement"]
    env["MODEL_NAME"] = story.backend.env["MODEL_NAME"]
    printed = subprocess.run([*command, "--with-model"], env=env, capture_output=True, text=True, timeout=300)
    assert printed.returncode == 0, printed.stderr[-2000:]
    by_cli = json.loads(printed.stdout)["model"]  # the base body's answers, out of fold as well
    assert {coder: figures["tasks"] for coder, figures in by_cli["with"].items()} == coders

    from mlflow import MlflowClient  # not the fluent API: it keeps process-wide state across stores

    client = MlflowClient(tracking_uri=f"sqlite:///{Path(story.model_dir).resolve() / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(f"label-studio-project-{story.project}")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.kind = 'agreement'")
    runs.sort(key=lambda run: run.info.start_time)  # one run per change: B's annotations came one by one
    assert 1 <= len(runs) <= 4
    assert runs[-1].data.metrics["physical_health_krippendorff_alpha"] == pytest.approx(8 / 15)
    assert runs[-1].data.metrics["agreement_tasks"] == 4


def test_a_restarted_backend_keeps_serving_without_retraining(story):
    assert story.first_version
    wait_for(story.settled, ROUND_TIMEOUT, "the work in flight to finish")
    backend = story.backend
    version = story.metrics()["current_version"]
    rounds = len(story.train_rounds())
    backend.stop()
    backend.start()
    task = {"id": 1, "data": {"text": "My knee hurts when I run.", "question": "?"}}
    body = {"tasks": [task], "project": f"{story.project}.1700000000", "label_config": CONFIG}
    answer = httpx.post(f"{backend.url}/predict", json=body, auth=AUTH, timeout=60).json()["results"][0]
    assert answer["model_version"] == version
    assert {r["from_name"] for r in answer["result"]} == {"dimension", "frequency"}
    assert len(story.train_rounds()) == rounds


def workers_for(project: int) -> list[str]:
    """Command lines of live worker processes of a project (read from /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"backend.worker" in argv and str(project).encode() in argv:
            found.append(b" ".join(argv).decode(errors="replace"))
    return found


def test_a_webhook_for_a_project_label_studio_does_not_know_leaves_nothing_behind(story):
    unknown = 987654
    body = {"action": "START_TRAINING", "project": {"id": unknown}}
    assert httpx.post(f"{story.backend.url}/webhook", json=body, auth=AUTH, timeout=10).status_code == 202
    directory = Path(story.model_dir) / str(unknown)
    wait_for(lambda: not directory.exists() and not workers_for(unknown), 120, "the request to be dropped")
    assert str(unknown) not in story.backend.metrics_all()
    if story.workers:  # with REDIS_URL: its requests are gone from Redis too
        import redis

        client = redis.Redis.from_url(story.backend.env["REDIS_URL"])
        wait_for(
            lambda: not client.sismember("coding-backend:projects", str(unknown)), 60, "it to be forgotten"
        )
        assert not client.exists(f"coding-backend:pending:{unknown}")


def test_a_worker_killed_mid_round_loses_no_request_and_its_lock_expires(story):
    """With REDIS_URL: the killed worker's lock still stood (nobody can tell a dead holder from a slow
    one), expired REDIS_LOCK_SECONDS later, and the sweep requested the round again for another worker."""
    if not story.workers:
        pytest.skip("a worker of its own is killed with REDIS_URL only")
    seen = story.worker_killed
    assert 0 < seen["lock_ttl_ms"] <= 6000
    assert [r["outcome"] for r in seen["bodies"]] == ["ok"]
    assert seen["metrics"]["body_version"] and seen["metrics"]["body_error"] is None
    log = story.logs()
    assert "the body lane's process ended without finishing" in log and "asking for it again" in log


def test_label_studio_never_holds_more_than_two_predictions_per_task(story):
    """Issue 36: at most two predictions per task in Label Studio at any time, over thirty
    annotations (the watcher read them all twice a second from the start of the story)."""
    assert story.thirty_annotations["annotations"] == 30
    watch = story.watch
    assert watch.reads >= 20, "the watcher read Label Studio all along"
    assert 1 <= watch.peak <= 2, f"task {watch.worst[0]} held predictions of {watch.worst[1]}"
