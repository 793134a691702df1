"""Benchmark of the feedback loop against a real Label Studio (not a test).

    python bench/bench_loop.py [--model bundled|twin] [--imported-before 300] [--annotations 12]
                               [--segments 11656|100000] [--features tfidf+embeddings] [--out bench/out]

Starts Label Studio 1.23.2 (its own virtualenv) and `coding-backend serve` (gunicorn, 1 worker,
basic auth, the bundled all-MiniLM-L6-v2, default settings: two-speed loop on), creates a project
with the study's form holding the whole pool of real segments, connects the backend (which starts
encoding the pool in the background), waits `--imported-before` seconds as a coder would take to
open the project, and then:

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

`--model twin` serves a model of the production default's exact shape with random weights
(bench/twin.py): its times and memory are the production model's, its rankings mean nothing.

`--features` sets FEATURES for the backend (default: the environment's, else the settings'
default); the file's name then says which (OUT/loop-tfidf-embeddings.json), and so does the JSON.

Prints a table and writes OUT/loop.json (OUT/loop-twin.json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
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
    """Peak memory (sum of RSS, sum of PSS) of a process group, sampled in the background."""

    def __init__(self, pgid: int):
        super().__init__(daemon=True)
        self.pgid, self.stop = pgid, threading.Event()
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
            time.sleep(0.5)


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
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--model", choices=("bundled", "twin"), default="bundled")
    parser.add_argument(
        "--imported-before", type=float, default=300.0, help="seconds between connecting and annotating"
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        default=3600,
        help="how long to wait for the first fine-tuned body (0: not at all; memory may miss its peak)",
    )
    parser.add_argument("--features", choices=FEATURES, help="FEATURES for the backend (issue 38)")
    args = parser.parse_args()
    model = {}
    if args.model == "twin":
        from bench.twin import DEFAULT, build_twin

        model = {"MODEL_NAME": str(build_twin(DEFAULT))}
    if args.features:
        model["FEATURES"] = args.features

    segments = pool_rows()
    segments = (
        grown(segments, args.segments) if (args.segments or 0) > len(segments) else segments[: args.segments]
    )
    coded = {row["id"]: row["codes"] for row in coded_rows()}
    workdir = Path(tempfile.mkdtemp(prefix="bench-loop-"))
    with label_studio(workdir) as studio:
        env = backend_env(studio, workdir, **model)
        backend = BackendProcess(free_port(), env, AUTH, log_path=workdir / "backend.log").start()
        memory = MemoryWatch(backend.process.pid)
        memory.start()
        try:
            results = run(
                studio,
                backend.url,
                segments,
                coded,
                args.annotations,
                args.imported_before,
                workdir / "m",
                body_timeout=args.body_timeout,
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
    report(results, args.out, f"{name}.json")
    return 0


def run(
    studio,
    backend_url: str,
    segments: list[dict],
    coded: dict,
    annotations: int,
    imported_before: float,
    model_dir: Path,
    body_timeout: float = 3600,
) -> dict:
    from label_studio_sdk.client import LabelStudio

    sdk = LabelStudio(base_url=studio.url, api_key=studio.token, timeout=300)

    def healthy() -> bool:
        try:
            return httpx.get(f"{backend_url}/health", auth=AUTH, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, 120, "the backend")
    project = sdk.projects.create(title="bench loop", label_config=CONFIG).id
    for start in range(0, len(segments), 2000):
        chunk = segments[start : start + 2000]
        rows = [{"text": s["text"], "question": s["question"], "segment": s["id"]} for s in chunk]
        sdk.projects.import_tasks(id=project, request=rows)
    tasks = {
        t.data["segment"]: t.id for t in sdk.tasks.list(project=project, page_size=1000, fields="task_only")
    }
    print(f"project {project}: {len(tasks)} tasks", flush=True)
    if not connect_backend(studio, project, backend_url, AUTH):
        raise RuntimeError("the project's webhook never got the backend's basic auth")

    def metrics() -> dict:
        return (
            httpx.get(f"{backend_url}/metrics", auth=AUTH, timeout=10)
            .json()["projects"]
            .get(str(project), {})
        )

    connected = time.time()
    wait_for(lambda: time.time() - connected >= imported_before, imported_before + 10, "the coders", 1.0)
    encoded = metrics().get("pool_encoded")
    print(f"{imported_before:.0f} s after connecting: pool encoded {encoded}", flush=True)
    first = [segment for segment in coded if segment in tasks][:10]
    for segment in first:
        sdk.annotations.create(id=tasks[segment], result=study_form_result(coded[segment]))
    submitted = time.time()
    live = wait_for(lambda: metrics().get("current_version"), 900, "the first version")
    first_live = time.time() - submitted
    wait_for(lambda: metrics().get("predictions_complete"), 900, "the full pre-annotation")
    first_complete = time.time() - submitted
    print(f"first version {live}: head live after {first_live:.0f} s, complete after {first_complete:.0f} s")

    def serving_labeled() -> int:
        """How many examples the serving version was trained on (its version.json in MODEL_DIR):
        /metrics' `labeled` counts what the running round found, before its version is live."""
        version = metrics().get("current_version")
        if not version:
            return 0
        return json.loads((model_dir / str(project) / version / "version.json").read_text())["n_labeled"]

    headers = {"Authorization": f"Token {studio.token}"}
    latencies, labeled = [], serving_labeled()
    rng = random.Random(0)
    for n in range(annotations):
        task = httpx.get(f"{studio.url}/api/projects/{project}/next", headers=headers, timeout=60).json()
        codes = coded.get(task["data"].get("segment")) or rng.choice(
            [["physical_health"], ["mental_health"], []]
        )
        started = time.time()
        sdk.annotations.create(id=task["id"], result=study_form_result(codes))
        labeled += 1
        wait_for(
            lambda wanted=labeled: serving_labeled() >= wanted, 300, "a version with the annotation", 0.1
        )
        served = httpx.get(f"{studio.url}/api/projects/{project}/next", headers=headers, timeout=60).json()
        latencies.append(time.time() - started)
        state = metrics()
        print(
            f"annotation {n + 1}: {latencies[-1]:.1f} s to a fresh queue ({state['current_version']}, "
            f"body {state.get('body_version')}, next task {served['id']})",
            flush=True,
        )
    body_live = None
    if body_timeout > 0:
        try:
            body = wait_for(
                lambda: metrics().get("body_state") == "idle" and metrics().get("body_version"),
                body_timeout,
                "the first fine-tuned body",
            )
            body_live = round(time.time() - submitted, 1)
            print(f"first fine-tuned body {body} ready {body_live:.0f} s after the 10th submit", flush=True)
        except TimeoutError as exc:
            print(f"{exc}: memory covers the fine-tuning up to here", flush=True)
    held = Counter(prediction.task for prediction in sdk.predictions.list(project=project))
    return {
        "tasks": len(tasks),
        "predictions_in_label_studio": sum(held.values()),
        "most_predictions_per_task": max(held.values(), default=0),
        "first_body_ready_seconds": body_live,
        "first_head_live_seconds": round(first_live, 1),
        "first_complete_seconds": round(first_complete, 1),
        "loop_seconds": [round(x, 2) for x in latencies],
        "loop_median_seconds": round(statistics.median(latencies), 2),
        "loop_p90_seconds": round(statistics.quantiles(latencies, n=10)[-1], 2),
        "imported_before_seconds": imported_before,
        "pool_encoded_before_annotating": encoded,
        "loop_max_seconds": round(max(latencies), 2),
        "body_versions_seen": metrics().get("body_version"),
    }


def report(results: dict, out: Path, name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(results, indent=2))
    print(f"\n| measure ({results['tasks']} tasks, model {results['model']}) | value |\n|---|---|")
    print(f"| tasks imported before the first annotation | {results['imported_before_seconds']:.0f} s |")
    print(f"| first pre-annotation: queue head live | {results['first_head_live_seconds']} s |")
    print(f"| first pre-annotation: every task predicted | {results['first_complete_seconds']} s |")
    runs = len(results["loop_seconds"])
    print(f"| submit -> fresh /next, median of {runs} | {results['loop_median_seconds']} s |")
    print(f"| submit -> fresh /next, p90 | {results['loop_p90_seconds']} s |")
    print(f"| submit -> fresh /next, max | {results['loop_max_seconds']} s |")
    print(f"| submit -> fresh /next, each | {', '.join(f'{x:.1f}' for x in results['loop_seconds'])} s |")
    print(f"| first fine-tuned body ready (pool embedded) | {results['first_body_ready_seconds']} s |")
    print(f"| predictions in Label Studio at the end | {results['predictions_in_label_studio']} |")
    print(f"| most predictions any one task holds | {results['most_predictions_per_task']} |")
    print(f"| peak backend memory, sum of RSS (all processes) | {results['peak_memory_gb']} GB |")
    print(f"| peak backend memory, sum of PSS (all processes) | {results['peak_memory_pss_gb']} GB |")
    for role, rss, pss in results["peak_memory_by_process"]:
        print(f"|   at the RSS peak: {role} | RSS {rss} GB, PSS {pss} GB |")


if __name__ == "__main__":
    sys.exit(main())
