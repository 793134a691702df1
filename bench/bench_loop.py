"""Benchmark of the feedback loop against a real Label Studio (not a test).

    python bench/bench_loop.py [--model bundled|twin] [--imported-before 300] [--annotations 12]
                               [--segments 11656|100000] [--beside 11656] [--until-encoded]
                               [--features tfidf+embeddings] [--embeddings-from DIR] [--out bench/out]

Starts Label Studio 1.23.2 (its own virtualenv) and `coding-backend serve` (gunicorn, 1 worker,
basic auth, the bundled all-MiniLM-L6-v2, default settings: two-speed loop on), creates a project
with the study's form holding the whole pool of real segments, connects the backend (which starts
encoding the pool in the background), waits `--imported-before` seconds as a coder would take to
open the project (`--until-encoded`: until the pool is encoded, at most that long), and then:

1. first pre-annotation: 10 coded segments are annotated (codes of coder_b); time from the
   10th submit until every other task has a prediction of the serving version;
2. the loop: `--annotations` times, a coder takes the task `/next` serves, submits codes, and
   we time until `/next` serves a task ranked by a version trained with that annotation (the
   serving version from `/metrics`, its training-set size from its version.json in MODEL_DIR:
   `/metrics`' `labeled` counts what a round found when it started, before it is live);
3. the first fine-tuned body: we wait until the background lane has fine-tuned it and embedded
   the pool with it, so that the memory watch sees every phase;
4. memory: peak memory of the backend's whole process group (server workers and both lanes of
   background work), sampled every 0.5 s: the sum of resident sizes (RSS, which counts the shared
   torch libraries once per process) and the sum of proportional set sizes (PSS, shared pages
   split between the processes that map them, closer to what a container's limit charges).

`--segments` above the 11,656 shared segments builds a project of that many distinct ones from them
(bench/corpus_100k.py: `--segments 100000` is issue 36's 100k project). At the end Label Studio's
predictions are counted (all, and the most any one task holds).

`--beside N` runs a second project of N segments in the same Label Studio and backend, side by side:
both are imported and connected first, each gets its first 10 annotations in turn, and the loop
annotates them alternately (one annotation each per step), so that both see the same machine. After
each loop annotation `/status/<project>` and `/metrics` are timed over HTTP. The table then has a
column per project and their ratio (issue 36 item 3: `--segments 100000 --beside 11656`).

`--model twin` serves a model of the production default's exact shape with random weights
(bench/twin.py): its times and memory are the production model's, its rankings mean nothing.

`--features` sets FEATURES for the backend (default: the environment's, else the settings'
default); the file's name then says which (OUT/loop-tfidf-embeddings.json), and so does the JSON.

`--embeddings-from DIR` copies an earlier run's embedding cache (its MODEL_DIR/.embeddings) in before
the backend starts: the segments it holds need no encoding, which a CPU without native bf16 needs
about 40 minutes for at 100,000 (the loop's figures do not include the encoding either way).

Prints a table and writes OUT/loop.json (OUT/loop-twin.json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psutil

from backend.devtools.local_studio import free_port
from backend.devtools.processes import BackendProcess
from backend.learning.options import FEATURES
from bench.common import AUTH, CONFIG, OUT, backend_env, coded_rows, label_studio, pool_rows
from bench.corpus_100k import grown
from tests.helpers import connect_backend, study_form_result, wait_for


class MemoryWatch(threading.Thread):
    """Peak memory (sum of RSS, sum of PSS) of a process group, sampled in the background every
    `interval` seconds (reading each process's PSS costs CPU: the load test samples less often)."""

    def __init__(self, pgid: int, interval: float = 0.5):
        super().__init__(daemon=True)
        self.pgid, self.interval, self.stop = pgid, interval, threading.Event()
        self.peak, self.peak_pss, self.breakdown = 0.0, 0.0, []

    def run(self) -> None:
        while not self.stop.is_set():
            sizes = []
            for process in psutil.process_iter(["pid", "cmdline"]):
                try:
                    if os.getpgid(process.pid) == self.pgid:
                        role = " ".join((process.info["cmdline"] or ["?"])[-3:])
                        info = process.memory_full_info()
                        sizes.append((role, round(info.rss / 1e9, 2), round(info.pss / 1e9, 2)))
                except (psutil.Error, ProcessLookupError):
                    continue
            total = sum(rss for _, rss, _ in sizes)
            if total > self.peak:
                self.peak, self.breakdown = total, sizes
            self.peak_pss = max(self.peak_pss, sum(pss for _, _, pss in sizes))
            time.sleep(self.interval)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--annotations", type=int, default=12)
    parser.add_argument(
        "--segments",
        type=int,
        default=None,
        help="import only this many (default: all 11,656); more: a grown corpus (bench/corpus_100k.py)",
    )
    parser.add_argument("--beside", type=int, default=None, help="a second project of this many segments")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--model", choices=("bundled", "twin"), default="bundled")
    parser.add_argument(
        "--imported-before", type=float, default=300.0, help="seconds between connecting and annotating"
    )
    parser.add_argument(
        "--until-encoded", action="store_true", help="annotate once every pool is encoded (at most that long)"
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        default=3600,
        help="how long to wait for the first fine-tuned body (0: not at all; memory may miss its peak)",
    )
    parser.add_argument("--features", choices=FEATURES, help="FEATURES for the backend (issue 38)")
    parser.add_argument(
        "--embeddings-from",
        type=Path,
        help="an earlier run's MODEL_DIR/.embeddings, copied in first: its segments need no encoding",
    )
    args = parser.parse_args()
    model = {}
    if args.model == "twin":
        from bench.twin import DEFAULT, build_twin

        model = {"MODEL_NAME": str(build_twin(DEFAULT))}
    if args.features:
        model["FEATURES"] = args.features

    sizes = [args.segments] + ([args.beside] if args.beside else [])
    coded = {row["id"]: row["codes"] for row in coded_rows()}
    workdir = Path(tempfile.mkdtemp(prefix="bench-loop-"))
    with label_studio(workdir) as studio:
        env = backend_env(studio, workdir, **model)
        if args.embeddings_from:
            shutil.copytree(args.embeddings_from, Path(env["MODEL_DIR"]) / ".embeddings")
        backend = BackendProcess(free_port(), env, AUTH, log_path=workdir / "backend.log").start()
        memory = MemoryWatch(backend.process.pid)
        memory.start()
        try:
            bench = Bench(studio, backend.url, coded, workdir / "m")
            results = bench.run(
                sizes, args.annotations, args.imported_before, args.until_encoded, args.body_timeout
            )
        finally:
            memory.stop.set()
            backend.stop()
        results["peak_memory_gb"] = round(memory.peak, 2)
        results["peak_memory_pss_gb"] = round(memory.peak_pss, 2)
        results["peak_memory_by_process"] = memory.breakdown
        results["backend_log"] = str(workdir / "backend.log")
        results["model"] = args.model
        results["features"] = env.get("FEATURES", "default")
    name = "loop" if args.model == "bundled" else f"loop-{args.model}"
    if args.features:
        name += "-" + args.features.replace("+", "-")
    if args.beside:
        name += f"-{results['projects'][0]['tasks']}-beside-{results['projects'][1]['tasks']}"
    report(results, args.out, f"{name}.json")
    return 0


def corpus(size: int | None) -> list[dict]:
    """The project's segments: the first `size` shared ones, or a grown corpus of `size` beyond them."""
    segments = pool_rows()
    return grown(segments, size) if (size or 0) > len(segments) else segments[:size]


@dataclass
class Project:
    """A benchmarked project: its Label Studio id, segment id → task id, and what was measured."""

    id: int
    tasks: dict[str, int]
    labeled: int = 0
    measured: dict = field(default_factory=dict)
    loop: list[float] = field(default_factory=list)
    status: list[float] = field(default_factory=list)
    metrics: list[float] = field(default_factory=list)


@dataclass
class Bench:
    """One Label Studio and one backend, with one project or two side by side."""

    studio: object
    backend_url: str
    coded: dict
    model_dir: Path

    def __post_init__(self):
        from label_studio_sdk.client import LabelStudio

        self.sdk = LabelStudio(base_url=self.studio.url, api_key=self.studio.token, timeout=300)
        self.headers = {"Authorization": f"Token {self.studio.token}"}
        self.rng = random.Random(0)

    def run(
        self, sizes, annotations: int, imported_before: float, until_encoded: bool, body_timeout: float
    ) -> dict:
        wait_for(self.healthy, 120, "the backend")
        projects = [self.create(corpus(size), f"bench loop {n}") for n, size in enumerate(sizes)]
        connected = time.time()

        def ready() -> bool:
            waited = time.time() - connected >= imported_before
            return waited or (until_encoded and all(self.metrics(p).get("pool_encoded") for p in projects))

        wait_for(ready, imported_before + 10, "the coders", 1.0)
        for project in projects:
            project.measured["imported_before_seconds"] = round(time.time() - connected, 1)
            project.measured["pool_encoded_before_annotating"] = self.metrics(project).get("pool_encoded")
            print(f"project {project.id}: pool encoded {project.measured['pool_encoded_before_annotating']}")
        for project in projects:
            self.first_version(project)
        for n in range(annotations):
            for project in projects:
                self.annotate_once(project, n)
        if body_timeout > 0:
            self.wait_for_bodies(projects, body_timeout)
        return {"projects": [self.summary(project) for project in projects]}

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.backend_url}/health", auth=AUTH, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def create(self, segments: list[dict], title: str) -> Project:
        """A project holding `segments`, imported in calls of 2,000, connected to the backend."""
        project = self.sdk.projects.create(title=title, label_config=CONFIG).id
        for start in range(0, len(segments), 2000):
            chunk = segments[start : start + 2000]
            rows = [{"text": s["text"], "question": s["question"], "segment": s["id"]} for s in chunk]
            self.sdk.projects.import_tasks(id=project, request=rows)
            print(f"project {project}: {start + len(chunk)} of {len(segments)} tasks imported", flush=True)
        listed = self.sdk.tasks.list(project=project, page_size=1000, fields="task_only")
        tasks = {t.data["segment"]: t.id for t in listed}
        if not connect_backend(self.studio, project, self.backend_url, AUTH):
            raise RuntimeError("the project's webhook never got the backend's basic auth")
        return Project(project, tasks)

    def metrics(self, project: Project) -> dict:
        response = httpx.get(f"{self.backend_url}/metrics", auth=AUTH, timeout=30)
        return response.json()["projects"].get(str(project.id), {})

    def serving_labeled(self, project: Project) -> int:
        """How many examples the serving version was trained on (its version.json in MODEL_DIR):
        /metrics' `labeled` counts what the running round found, before its version is live."""
        version = self.metrics(project).get("current_version")
        if not version:
            return 0
        return json.loads((self.model_dir / str(project.id) / version / "version.json").read_text())[
            "n_labeled"
        ]

    def first_version(self, project: Project) -> None:
        """10 coded segments annotated; when the first version's head is live, and all of it written."""
        first = [segment for segment in self.coded if segment in project.tasks][:10]
        for segment in first:
            self.sdk.annotations.create(
                id=project.tasks[segment], result=study_form_result(self.coded[segment])
            )
        submitted = project.measured["tenth_submit"] = time.time()
        live = wait_for(lambda: self.metrics(project).get("current_version"), 900, "the first version")
        project.measured["first_head_live_seconds"] = round(time.time() - submitted, 1)
        wait_for(lambda: self.metrics(project).get("predictions_complete"), 900, "the first queue head")
        project.measured["first_complete_seconds"] = round(time.time() - submitted, 1)
        project.labeled = self.serving_labeled(project)
        print(f"project {project.id}: first version {live}: {project.measured}", flush=True)

    def next_task(self, project: Project) -> dict:
        url = f"{self.studio.url}/api/projects/{project.id}/next"
        return httpx.get(url, headers=self.headers, timeout=60).json()

    def annotate_once(self, project: Project, n: int) -> None:
        """A coder takes the task `/next` serves and submits codes; the time until `/next` serves a task
        ranked by a version trained with that annotation; then `/status` and `/metrics` timed."""
        task = self.next_task(project)
        codes = self.coded.get(task["data"].get("segment")) or self.rng.choice(
            [["physical_health"], ["mental_health"], []]
        )
        started = time.time()
        self.sdk.annotations.create(id=task["id"], result=study_form_result(codes))
        project.labeled += 1
        wanted = project.labeled
        wait_for(lambda: self.serving_labeled(project) >= wanted, 300, "a version with the annotation", 0.1)
        served = self.next_task(project)
        project.loop.append(time.time() - started)
        project.status.append(
            timed(lambda: httpx.get(f"{self.backend_url}/status/{project.id}", auth=AUTH, timeout=30))
        )
        project.metrics.append(timed(lambda: self.metrics(project)))
        state = self.metrics(project)
        print(
            f"project {project.id}, annotation {n + 1}: {project.loop[-1]:.1f} s to a fresh queue "
            f"({state['current_version']}, body {state.get('body_version')}, next task {served['id']}); "
            f"/status {project.status[-1] * 1000:.0f} ms, /metrics {project.metrics[-1] * 1000:.0f} ms",
            flush=True,
        )

    def wait_for_bodies(self, projects: list[Project], timeout: float) -> None:
        """Wait until each project's first fine-tuned body serves, so that the memory watch sees every
        phase (at most `timeout` in all)."""
        deadline = time.time() + timeout
        for project in projects:

            def idle_body(project=project):
                state = self.metrics(project)
                return state.get("body_state") == "idle" and state.get("body_version")

            try:
                body = wait_for(idle_body, max(1.0, deadline - time.time()), "the first fine-tuned body")
                ready = round(time.time() - project.measured["tenth_submit"], 1)
                project.measured["first_body_ready_seconds"] = ready
                print(
                    f"project {project.id}: first fine-tuned body {body} ready {ready:.0f} s after the 10th"
                )
            except TimeoutError as exc:
                print(f"project {project.id}: {exc}: memory covers the fine-tuning up to here", flush=True)

    def summary(self, project: Project) -> dict:
        held = Counter(prediction.task for prediction in self.sdk.predictions.list(project=project.id))
        measured = {key: value for key, value in project.measured.items() if key != "tenth_submit"}
        return {
            "project": project.id,
            "tasks": len(project.tasks),
            **measured,
            "predictions_in_label_studio": sum(held.values()),
            "most_predictions_per_task": max(held.values(), default=0),
            "loop_seconds": [round(x, 2) for x in project.loop],
            "loop_median_seconds": round(statistics.median(project.loop), 2),
            "loop_p90_seconds": round(statistics.quantiles(project.loop, n=10, method="inclusive")[-1], 2),
            "loop_max_seconds": round(max(project.loop), 2),
            "status_median_ms": round(statistics.median(project.status) * 1000, 1),
            "status_max_ms": round(max(project.status) * 1000, 1),
            "metrics_median_ms": round(statistics.median(project.metrics) * 1000, 1),
            "metrics_max_ms": round(max(project.metrics) * 1000, 1),
            "body_versions_seen": self.metrics(project).get("body_version"),
        }


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


ROWS = [
    ("tasks imported", "tasks", ""),
    ("connected -> first annotation", "imported_before_seconds", " s"),
    ("first pre-annotation: queue head live", "first_head_live_seconds", " s"),
    ("first pre-annotation: queue head written", "first_complete_seconds", " s"),
    ("submit -> fresh /next, median", "loop_median_seconds", " s"),
    ("submit -> fresh /next, p90", "loop_p90_seconds", " s"),
    ("submit -> fresh /next, max", "loop_max_seconds", " s"),
    ("/status/<project> over HTTP, median", "status_median_ms", " ms"),
    ("/status/<project> over HTTP, max", "status_max_ms", " ms"),
    ("/metrics over HTTP, median", "metrics_median_ms", " ms"),
    ("/metrics over HTTP, max", "metrics_max_ms", " ms"),
    ("first fine-tuned body ready (pool embedded)", "first_body_ready_seconds", " s"),
    ("predictions in Label Studio at the end", "predictions_in_label_studio", ""),
    ("most predictions any one task holds", "most_predictions_per_task", ""),
]


def report(results: dict, out: Path, name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(results, indent=2))
    projects = results["projects"]
    ratio = len(projects) == 2
    columns = " | ".join(f"{p['tasks']:,} tasks" for p in projects) + (" | ratio" if ratio else "")
    print(f"\n| measure (model {results['model']}) | {columns} |\n|---|" + "---|" * (len(projects) + ratio))
    for label, key, unit in ROWS:
        values = [p.get(key) for p in projects]
        cells = " | ".join("-" if v is None else f"{v}{unit}" for v in values)
        if ratio:
            numeric = all(isinstance(v, (int, float)) and v for v in values)
            cells += f" | {values[0] / values[1]:.2f}" if numeric else " | -"
        print(f"| {label} | {cells} |")
    for project in projects:
        each = ", ".join(f"{x:.1f}" for x in project["loop_seconds"])
        print(f"| submit -> fresh /next, each ({project['tasks']:,}) | {each} s |")
    print(f"| peak backend memory, sum of RSS (all processes) | {results['peak_memory_gb']} GB |")
    print(f"| peak backend memory, sum of PSS (all processes) | {results['peak_memory_pss_gb']} GB |")
    for role, rss, pss in results["peak_memory_by_process"]:
        print(f"|   at the RSS peak: {role} | RSS {rss} GB, PSS {pss} GB |")


if __name__ == "__main__":
    sys.exit(main())
