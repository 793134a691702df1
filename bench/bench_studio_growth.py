"""Benchmark (not a test): do Label Studio's own calls on a coder's path grow with the project?

    python bench/bench_studio_growth.py [--segments 100000] [--beside 11656] [--repeat 20]
                                        [--database sqlite|postgresql] [--out bench/out]

Label Studio alone, no backend: the baseline for issue 36's 100k target (submit -> fresh queue at
100,000 segments within 1.5x of 11,656). Starts Label Studio 1.23.2 (its own virtualenv) and
creates two projects with the study's form, of `--segments` (bench/corpus_100k.py) and `--beside`
segments; gives each a queue head of 100 predictions as the backend writes one (a single create
per task, studio/client.py), serves it by uncertainty sampling, and then times, alternating
between the two projects so that both see the same machine, the calls a round of the backend and
a coder make:

- a coder's submit (an annotation created; Label Studio sends no webhook here, so it is the
  submit without the backend's answer), and `/next` (uncertainty sampling);
- one prediction updated in place (PATCH: version, result, score), as every round writes its head;
- the first page of the project's annotated tasks (the backend's reconcile reads them all; a page
  of 100 here, as few are annotated).

Prints a table of medians per project and their ratio, and writes OUT/studio-growth.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from backend.studio.client import StudioClient
from bench.bench_load import studio_on
from bench.bench_writepath import prediction
from bench.common import CONFIG, OUT, pool_rows
from bench.corpus_100k import grown
from tests.helpers import study_form_result

HEAD = 100
CALLS = ("submit (annotation created)", "/next (uncertainty sampling)", "prediction updated in place")
CALLS += ("annotated tasks, first page",)


class Project:
    """One project with a served head of HEAD predictions, and its calls timed."""

    def __init__(self, studio, client: StudioClient, rows: list[dict], title: str):
        self.studio, self.client, sdk = studio, client, client.sdk
        self.id = sdk.projects.create(title=title, label_config=CONFIG).id
        for start in range(0, len(rows), 2000):
            chunk = [{"text": r["text"], "question": r["question"]} for r in rows[start : start + 2000]]
            sdk.projects.import_tasks(id=self.id, request=chunk)
            print(f"{title}: {start + len(chunk)} of {len(rows)} tasks imported", flush=True)
        listed = sdk.tasks.list(project=self.id, page_size=HEAD, fields="task_only")
        self.head = [task.id for task in itertools.islice(listed, HEAD)]  # the first page only
        self.predictions = [
            client.create_prediction(self.id, prediction(task, "v1", place / HEAD))
            for place, task in enumerate(self.head)
        ]
        client.serve_version(self.id, "v1")
        self.seconds: dict[str, list[float]] = {call: [] for call in CALLS}
        self.on_screen = self.next_task()

    def next_task(self) -> int:
        headers = {"Authorization": f"Token {self.studio.token}"}
        answer = httpx.get(f"{self.studio.url}/api/projects/{self.id}/next", headers=headers, timeout=120)
        return answer.json()["id"]

    def step(self, n: int) -> None:
        """A coder submits the task on screen and takes the next; a round rewrites one prediction;
        the reconcile reads the annotated tasks."""
        sdk = self.client.sdk
        self.timed(CALLS[0], lambda: sdk.annotations.create(id=self.on_screen, result=study_form_result([])))
        self.on_screen = self.timed(CALLS[1], self.next_task)
        place = HEAD - 1 - n % HEAD
        change = prediction(self.head[place], f"v{n + 2}", place / HEAD)
        self.timed(CALLS[2], lambda: self.client.update_prediction(self.id, self.predictions[place], change))
        self.timed(CALLS[3], lambda: next(iter(self.client.tasks(self.id, annotated=True, data_only=True))))

    def timed(self, call: str, work: Callable):
        started = time.perf_counter()
        value = work()
        self.seconds[call].append(time.perf_counter() - started)
        return value


def corpus(shared: list[dict], size: int) -> list[dict]:
    """The shared segments, the first `size` of them, or more grown from them (as bench_loop.py)."""
    return grown(shared, size) if size > len(shared) else shared[:size]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--segments", type=int, default=100_000)
    parser.add_argument("--beside", type=int, default=11_656)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    shared = pool_rows()
    workdir = Path(tempfile.mkdtemp(prefix="bench-studio-growth-"))
    with ExitStack() as stack:
        studio = studio_on(args.database, workdir, stack)
        client = StudioClient(studio.url, studio.token, timeout=600)
        large = Project(studio, client, corpus(shared, args.segments), f"{args.segments} segments")
        small = Project(studio, client, corpus(shared, args.beside), f"{args.beside} segments")
        for n in range(args.repeat):
            for project in (large, small):
                project.step(n)
    results = {
        "database": args.database,
        "segments": [args.segments, args.beside],
        "repeat": args.repeat,
        "seconds": {call: [large.seconds[call], small.seconds[call]] for call in CALLS},
    }
    report(results, args.out)
    return 0


def report(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "studio-growth.json").write_text(json.dumps(results, indent=2))
    large, small = results["segments"]
    print(
        f"\n| Label Studio alone ({results['database']}), median of {results['repeat']} | "
        f"{large:,} segments | {small:,} segments | ratio |\n|---|---:|---:|---:|"
    )
    for call, (at_large, at_small) in results["seconds"].items():
        a, b = statistics.median(at_large), statistics.median(at_small)
        print(f"| {call} | {a * 1000:.0f} ms | {b * 1000:.0f} ms | {a / b:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
