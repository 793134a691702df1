"""Load test against a real Label Studio (not a test).

    python bench/bench_load.py [--coders 20] [--minutes 10] [--segments 11656] [--out bench/out]
                               [--database sqlite|postgresql] [--without-backend] [--think 1 3]
                               [--projects 10] [--until-encoded SECONDS] [--embeddings-from DIR]

Issue 36's four runs: `--database sqlite` and `--database postgresql` (a throwaway PostgreSQL
server, devtools/local_postgres.py, as Label Studio's production setup), each with the backend and
with `--without-backend`, the baseline: the same projects, annotations and coders on Label Studio
alone, so what remains of the coders' errors and latency is Label Studio's own.

Starts Label Studio 1.23.2 and `coding-backend serve` (gunicorn, 2 workers, basic auth, the bundled
all-MiniLM-L6-v2, default settings: two-speed loop, MAX_WORKER_PROCESSES=4), creates one project
holding the whole pool of real segments and four small ones (200 segments each), connects the
backend to each, gives each 10 annotations, and then, for `--minutes`:

- `--coders` simulated coders submit annotations concurrently into the large project (each takes
  the task `/next` serves it, waits 1-3 s, or `--think LOW HIGH` seconds, submits codes of a coded
  segment or a random choice);
- one more coder per small project submits every 5-15 s.

Label Studio sends each annotation's webhook inside the coder's request; the backend's access log
(`ACCESS_LOG=true` prints each request's duration) gives the webhook latency as the backend saw it.
It reports webhook latency p50/p99, the most worker processes alive at once (sampled every 0.25 s),
the peak memory of the backend's process group, rounds run against webhooks received, and labels
lost: after the load stops and the last rounds settle, every project's `/metrics` must count every
annotation Label Studio holds. For the coders, every run reports their errors (a request that
failed, or a /next without a task) and the /next and submit latency p50/p99. Prints a table and
writes OUT/load-<database>-<backend|baseline>[-think<LOW>-<HIGH>].json.

The default pace is a stress test: 20 coders at 1-3 s a segment take about 2.5 segments a second
from the large project. A version's queue head is written one call at a time, each a fifth to half
a second on SQLite under that load, so no head keeps up with them (docs/benchmarks.md, "Load").
`--think 20 60` is a team at a human pace, the same 20 coders taking 20-60 s a segment.

`--projects N` is issue 36's many projects on one box: N projects of `--segments` segments each (a
seeded sample of the shared ones per project), `--coders` coders in each at the `--think` pace, and
no small projects (`--projects 10 --segments 10000 --coders 2 --think 20 60`). Every run also
reports each project's coders apart, and how long each project's first version took to go live
after its 10th annotation (`/metrics` polled every half second), before the coders start.
`--until-encoded SECONDS` gives the first annotations only once every project's pool is encoded,
as on projects imported a while before coding starts (without it, the first versions wait for
the encoding).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psutil

from backend.devtools.local_postgres import LocalPostgres
from backend.devtools.local_studio import free_port
from backend.devtools.processes import BackendProcess
from backend.queue.slots import WorkerSlots
from bench import cpu_shares
from bench.bench_loop import MemoryWatch
from bench.common import AUTH, CONFIG, OUT, backend_env, coded_rows, label_studio, pool_rows
from tests.helpers import connect_backend, study_form_result, wait_for

CHOICES = [["physical_health"], ["mental_health"], ["daily_functioning", "freq_mentioned"], []]
CAP = 4  # MAX_WORKER_PROCESSES' default, which the bench leaves as it is
WEBHOOK_LINE = re.compile(r'"POST /webhook HTTP/[\d.]+" (\d{3}) (\d+)us')
ELSEWHERE_SECONDS = 5.0  # how often other backends' workers are counted
MEMORY_SECONDS = 2.0  # how often the backend's memory (RSS, PSS) is sampled: a peak lasts longer


class WorkerWatch(threading.Thread):
    """Every 0.25 s: the bench backend's worker processes and the worker slots they hold; the most.

    Only processes of the backend's own process group count (the server and every worker it
    started): the first re-run counted 6 workers against a cap of 4 while the fault campaign's
    backend ran its own workers on the same machine. A worker is a `python -m backend.worker`
    process whose parent is not one (helpers it forked carry the same command line). Slots are
    read from /proc/locks, without taking their locks (which would make a starting worker miss a
    free slot). Every sample with more workers than the cap is kept, naming each process.

    It reads the command line of the group's processes only, and counts other backends' workers every
    ELSEWHERE_SECONDS: reading every process's 4 times a second, with PSS sampled twice a second,
    cost the benchmark 90 CPU seconds over a loaded phase with the backend against 18 without,
    taken from the two cores Label Studio shares (docs/benchmarks.md).
    """

    def __init__(self, group: int, model_dir: Path, cap: int):
        super().__init__(daemon=True)
        self.group, self.cap = group, cap
        self.slots = WorkerSlots(model_dir, cap)
        self.stop, self.most, self.most_with_helpers, self.most_slots = threading.Event(), 0, 0, 0
        self.most_elsewhere, self.over_cap = 0, []

    def run(self) -> None:
        counted_elsewhere = 0.0
        while not self.stop.is_set():
            mine = self.group_workers()
            top = [info for info in mine.values() if info.get("ppid") not in mine]  # one may end mid-read
            if len(top) > self.cap:
                self.over_cap.append([describe(info) for info in top])
            self.most = max(self.most, len(top))
            self.most_with_helpers = max(self.most_with_helpers, len(mine))
            if time.monotonic() - counted_elsewhere >= ELSEWHERE_SECONDS:
                self.most_elsewhere = max(self.most_elsewhere, self.workers_elsewhere())
                counted_elsewhere = time.monotonic()
            self.most_slots = max(self.most_slots, self.held_slots())
            time.sleep(0.25)

    def group_workers(self) -> dict[int, dict]:
        """The worker processes of the backend's process group (forked helpers included), by pid."""
        mine = {}
        for pid in psutil.pids():
            try:
                if os.getpgid(pid) != self.group:
                    continue
                process = psutil.Process(pid)
                info = {"pid": pid, "ppid": process.ppid(), "cmdline": process.cmdline()}
                info["create_time"] = process.create_time()
            except (psutil.Error, ProcessLookupError):
                continue
            if "backend.worker" in info["cmdline"]:
                mine[pid] = info
        return mine

    def workers_elsewhere(self) -> int:
        """Worker processes of other backends on the machine."""
        elsewhere = 0
        for process in psutil.process_iter(["pid", "cmdline"]):
            if "backend.worker" not in (process.info["cmdline"] or []):
                continue
            with contextlib.suppress(ProcessLookupError):
                elsewhere += os.getpgid(process.info["pid"]) != self.group
        return elsewhere

    def held_slots(self) -> int:
        """Slot files some process holds a flock on, read from /proc/locks."""
        inodes = set()
        for number in range(self.cap):
            with contextlib.suppress(FileNotFoundError):
                inodes.add(os.stat(self.slots.directory / f"slot-{number}").st_ino)
        held = set()
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if len(fields) > 5 and fields[1] == "FLOCK":
                inode = int(fields[5].rsplit(":", 1)[1])
                if inode in inodes:
                    held.add(inode)
        return len(held)


def describe(info: dict) -> str:
    """pid, parent, project and lane, and age of a worker process."""
    argv = info["cmdline"]
    where = " ".join(argv[argv.index("backend.worker") + 1 :])
    return f"pid {info['pid']} ppid {info['ppid']} [{where}] {time.time() - info['create_time']:.0f} s old"


def coder_tokens(studio, sdk, count: int) -> list[str]:
    """`count` Label Studio users of their own, one per simulated coder, and their API tokens."""
    emails = [f"coder{n}@load.test" for n in range(count)]
    for n, email in enumerate(emails):
        sdk.users.create(email=email, username=f"coder{n}")
    tokens = studio.coder_tokens(emails)
    return [tokens[email] for email in emails]


class Coder(threading.Thread):
    """One Label Studio user: takes the task /next serves them, thinks 1-3 s (or `pause`), submits;
    until told to stop. Times each /next and each submit; an error is a request that failed or a
    /next without a task (the pool of these runs never runs out: Label Studio answered so while busy)."""

    def __init__(self, studio, token: str, project: int, coded: dict, stop, pause=(1.0, 3.0), seed=0):
        super().__init__(daemon=True)
        self.studio, self.token, self.project, self.coded = studio, token, project, coded
        self.stop, self.pause = stop, pause
        self.rng, self.submitted, self.errors = random.Random(seed), 0, []
        self.next_ms, self.submit_ms = [], []

    def run(self) -> None:
        from label_studio_sdk.client import LabelStudio

        sdk = LabelStudio(base_url=self.studio.url, api_key=self.token, timeout=300)
        headers = {"Authorization": f"Token {self.token}"}
        with httpx.Client(base_url=self.studio.url, headers=headers, timeout=120) as http:
            while not self.stop.is_set():
                try:
                    started = time.perf_counter()
                    served = http.get(f"/api/projects/{self.project}/next")
                    self.next_ms.append((time.perf_counter() - started) * 1000)
                    task = served.json()
                    if served.status_code != 200 or "id" not in task:
                        raise RuntimeError(
                            f"/next: HTTP {served.status_code} without a task: {served.text[:120]}"
                        )
                    self.stop.wait(self.rng.uniform(*self.pause))
                    codes = self.coded.get(task["data"].get("segment")) or self.rng.choice(CHOICES)
                    started = time.perf_counter()
                    sdk.annotations.create(id=task["id"], result=study_form_result(codes))
                    self.submit_ms.append((time.perf_counter() - started) * 1000)
                    self.submitted += 1
                except Exception as exc:  # a busy Label Studio: note it, breathe, go on
                    self.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                    self.stop.wait(1)


def create_project(studio, sdk, rows: list[dict], title: str, backend_url: str | None) -> int:
    """A project of `rows`; connected to the backend at `backend_url` unless it is None (baseline)."""
    project = sdk.projects.create(title=title, label_config=CONFIG).id
    for start in range(0, len(rows), 2000):
        chunk = rows[start : start + 2000]
        sdk.projects.import_tasks(
            id=project,
            request=[{"text": r["text"], "question": r["question"], "segment": r["id"]} for r in chunk],
        )
    if backend_url and not connect_backend(studio, project, backend_url, AUTH):
        raise RuntimeError(f"the webhook of {title} never got the backend's basic auth")
    return project


def annotated_count(sdk, project: int) -> int:
    query = json.dumps(
        {
            "filters": {
                "conjunction": "and",
                "items": [
                    {
                        "filter": "filter:tasks:total_annotations",
                        "operator": "greater",
                        "type": "Number",
                        "value": 0,
                    }
                ],
            }
        }
    )
    return sum(1 for _ in sdk.tasks.list(project=project, page_size=1000, fields="task_only", query=query))


def percentile(values: list[float], share: float) -> float | None:
    """The value below which `share` of `values` lie (None without values)."""
    return round(sorted(values)[int(share * (len(values) - 1))], 1) if values else None


def per_project(coders: list[Coder]) -> list[dict]:
    """Each project's coders apart: submits, errors, /next latency."""
    figures = []
    for project in sorted({coder.project for coder in coders}):
        mine = [coder for coder in coders if coder.project == project]
        next_ms = [ms for coder in mine for ms in coder.next_ms]
        figures.append(
            {
                "project": project,
                "coders": len(mine),
                "submitted": sum(coder.submitted for coder in mine),
                "coder_errors": sum(len(coder.errors) for coder in mine),
                "next_requests": len(next_ms),
                "next_ms_p50": percentile(next_ms, 0.5),
                "next_ms_p99": percentile(next_ms, 0.99),
            }
        )
    return figures


def studio_on(database: str, workdir: Path, stack: contextlib.ExitStack, sqlite_wal: bool = False):
    """A running Label Studio on SQLite (its default; `sqlite_wal`: in write-ahead-log mode) or on a
    throwaway PostgreSQL server."""
    # Label Studio's own switch (label_studio/server.py): PRAGMA journal_mode=wal on each connection
    extra_env = {"AZURE_MOUNT_FIX": "1"} if sqlite_wal else {}
    if database == "postgresql":
        directory = Path(tempfile.mkdtemp(prefix="bench-load-postgres-"))  # the postgres user enters it
        postgres = LocalPostgres(directory).start()
        stack.callback(postgres.stop)
        extra_env = postgres.label_studio_env()
    return stack.enter_context(label_studio(workdir, extra_env))


class Backend:
    """The benchmarked backend and its watches; absent (every figure None) in a baseline run."""

    def __init__(
        self, studio, workdir: Path, stack: contextlib.ExitStack, connected: bool, embeddings: Path | None
    ):
        self.log_path = workdir / "backend.log"
        self.process = self.memory = self.workers = None
        if not connected:
            return
        env = backend_env(studio, workdir, ACCESS_LOG="true")
        if embeddings:  # an earlier run's embedding cache: its segments need no encoding
            shutil.copytree(embeddings, Path(env["MODEL_DIR"]) / ".embeddings")
        self.process = BackendProcess(free_port(), env, AUTH, workers=2, log_path=self.log_path).start()
        stack.callback(self.process.stop)
        self.memory = MemoryWatch(self.process.process.pid, interval=MEMORY_SECONDS)
        self.workers = WorkerWatch(self.process.process.pid, Path(env["MODEL_DIR"]), CAP)
        for watch in (self.memory, self.workers):
            watch.start()
            stack.callback(watch.stop.set)

    @property
    def url(self) -> str | None:
        return self.process.url if self.process else None

    def metrics(self) -> dict:
        return httpx.get(f"{self.url}/metrics", auth=AUTH, timeout=30).json()["projects"]

    def wait_for_first_versions(self, annotated_at: dict[int, float]) -> dict[str, float]:
        """Seconds from each project's 10th annotation (`annotated_at`: monotonic) until `/metrics`
        names a serving version (its queue head is live then), polled every half second."""
        live: dict[str, float] = {}

        def all_live() -> bool:
            found = self.metrics()
            for project, at in annotated_at.items():
                if str(project) not in live and found.get(str(project), {}).get("current_version"):
                    live[str(project)] = round(time.monotonic() - at, 1)
            return len(live) == len(annotated_at)

        if self.process:
            print("waiting for every project's first version ...", flush=True)
            wait_for(all_live, 1800, "every project's first version")
            print(f"first versions live after the 10th annotation (s): {live}", flush=True)
        return live

    def wait_until_encoded(self, projects: list[int], seconds: float) -> float | None:
        """Seconds until every project's pool is encoded (`/metrics` `pool_encoded`), as when coders
        start on a project imported a while ago; None when not asked, or without a backend."""
        if not self.process or seconds <= 0:
            return None
        started = time.monotonic()
        print(f"waiting for {len(projects)} pools to be encoded ...", flush=True)
        wait_for(
            lambda: all(self.metrics().get(str(p), {}).get("pool_encoded") for p in projects),
            seconds,
            "every pool encoded",
            1.0,
        )
        encoded = round(time.monotonic() - started, 1)
        print(f"every pool encoded after {encoded} s", flush=True)
        return encoded

    def log_offset(self) -> int:
        return self.log_path.stat().st_size if self.process else 0

    def figures(self, sdk, projects: list[int], offset: int) -> dict:
        """What the backend did under the load: webhooks, rounds, workers, memory, labels lost."""
        if not self.process:
            return dict.fromkeys(BACKEND_FIGURES)
        print("load over; waiting for the last rounds to settle ...", flush=True)

        def settled(project: int) -> bool:
            """The fast lane idle with nothing left for it: fine-tuning (`body`) and encoding the pool
            (`embed`) change no count of labels, and ten projects' bodies took over 20 minutes on a
            CPU without native bf16."""
            state = self.metrics().get(str(project), {})
            left = set(state.get("pending") or []) - {"body", "embed"}
            return state.get("state") in ("idle", "failed") and not left

        wait_for(lambda: all(settled(p) for p in projects), 1800, "the last rounds")
        final = self.metrics()
        load_log = self.log_path.read_text()[offset:]
        durations = [int(us) / 1000 for status, us in WEBHOOK_LINE.findall(load_log)]
        return {
            "webhooks": len(durations),
            "webhook_ms_p50": percentile(durations, 0.5),
            "webhook_ms_p99": percentile(durations, 0.99),
            "webhook_ms_max": percentile(durations, 1.0),
            "train_rounds_run": load_log.count(": train round ok") + load_log.count(": train round failed"),
            "failed_rounds": load_log.count("round failed"),
            "labels_lost": {
                p: annotated_count(sdk, p) - (final[str(p)].get("labeled") or 0) for p in projects
            },
            "max_worker_processes": self.workers.most,
            "max_worker_processes_with_forked_helpers": self.workers.most_with_helpers,
            "max_slots_held": self.workers.most_slots,
            "max_worker_processes_of_other_backends": self.workers.most_elsewhere,
            "samples_over_cap": self.workers.over_cap[:20],
            "peak_memory_gb": round(self.memory.peak, 2),
            "peak_memory_pss_gb": round(self.memory.peak_pss, 2),
        }


BACKEND_FIGURES = (
    "webhooks",
    "webhook_ms_p50",
    "webhook_ms_p99",
    "webhook_ms_max",
    "train_rounds_run",
    "failed_rounds",
    "labels_lost",
    "max_worker_processes",
    "max_worker_processes_with_forked_helpers",
    "max_slots_held",
    "max_worker_processes_of_other_backends",
    "samples_over_cap",
    "peak_memory_gb",
    "peak_memory_pss_gb",
)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--coders", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--segments", type=int, default=None, help="import only this many (default: all)")
    parser.add_argument(
        "--database", choices=("sqlite", "postgresql"), default="sqlite", help="Label Studio's database"
    )
    parser.add_argument(
        "--without-backend",
        action="store_true",
        help="the baseline: Label Studio alone, no backend connected",
    )
    parser.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=(1.0, 3.0),
        metavar=("LOW", "HIGH"),
        help="seconds a coder of the large project takes per segment, drawn uniformly (default: 1 3)",
    )
    parser.add_argument(
        "--projects",
        type=int,
        default=0,
        help="that many projects of --segments, --coders each (default: 1 + 4 small)",
    )
    parser.add_argument(
        "--until-encoded",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before the first annotations, wait (at most SECONDS) until every project's pool is encoded",
    )
    parser.add_argument(
        "--embeddings-from",
        type=Path,
        help="an earlier run's MODEL_DIR/.embeddings, copied in first (bench_loop.py has the same)",
    )
    parser.add_argument(
        "--sqlite-wal",
        action="store_true",
        help="SQLite in write-ahead-log mode: readers and the one writer no longer wait for each other",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from label_studio_sdk.client import LabelStudio

    segments = pool_rows()[: args.segments]
    coded = {row["id"]: row["codes"] for row in coded_rows()}
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    with contextlib.ExitStack() as stack:
        studio = studio_on(args.database, workdir, stack, args.sqlite_wal)
        backend = Backend(studio, workdir, stack, not args.without_backend, args.embeddings_from)
        sdk = LabelStudio(base_url=studio.url, api_key=studio.token, timeout=300)
        rng = random.Random(1)
        if args.projects:
            sample = pool_rows()
            large = [
                create_project(studio, sdk, rng.sample(sample, len(segments)), f"load: {n}", backend.url)
                for n in range(args.projects)
            ]
            small = []
        else:
            large = [create_project(studio, sdk, segments, "load: all segments", backend.url)]
            small = [
                create_project(studio, sdk, rng.sample(segments, 200), f"load: small {n}", backend.url)
                for n in range(4)
            ]
        projects = [*large, *small]
        encoded_after = backend.wait_until_encoded(projects, args.until_encoded)
        annotated_at = {}
        for project in projects:  # the first version of each: its first 10 annotations
            tasks = list(
                itertools.islice(sdk.tasks.list(project=project, page_size=10, fields="task_only"), 10)
            )
            for task in tasks:
                sdk.annotations.create(id=task.id, result=study_form_result(rng.choice(CHOICES)))
            annotated_at[project] = time.monotonic()
        first_versions = backend.wait_for_first_versions(annotated_at)
        offset = backend.log_offset()
        stop = threading.Event()
        tokens = iter(coder_tokens(studio, sdk, args.coders * len(large) + len(small)))
        pace = tuple(args.think)
        coders = [
            Coder(studio, next(tokens), project, coded, stop, pace, seed=len(large) * m + n)
            for n, project in enumerate(large)
            for m in range(args.coders)
        ]
        coders += [
            Coder(studio, next(tokens), p, coded, stop, pause=(5.0, 15.0), seed=100 + n)
            for n, p in enumerate(small)
        ]
        started, phase = time.monotonic(), cpu_shares.Phase()
        phase.start()
        for coder in coders:
            coder.start()
        print(f"{len(coders)} coders at work for {args.minutes} minutes ...", flush=True)
        stop.wait(args.minutes * 60)
        stop.set()
        for coder in coders:
            coder.join(300)
        loaded_seconds, cpu = time.monotonic() - started, phase.stop()
        next_ms = [ms for c in coders for ms in c.next_ms]
        submit_ms = [ms for c in coders for ms in c.submit_ms]
        results = {
            "database": args.database,
            "sqlite_wal": args.sqlite_wal,
            "backend": not args.without_backend,
            "coders": len(coders),
            "think_seconds": list(pace),
            "minutes": round(loaded_seconds / 60, 1),
            "tasks_large": len(segments),
            "projects": len(large),
            "submitted": sum(c.submitted for c in coders),
            "next_requests": len(next_ms),
            "coder_errors": sum(len(c.errors) for c in coders),
            "next_ms_p50": percentile(next_ms, 0.5),
            "next_ms_p99": percentile(next_ms, 0.99),
            "submit_ms_p50": percentile(submit_ms, 0.5),
            "submit_ms_p99": percentile(submit_ms, 0.99),
            **backend.figures(sdk, projects, offset),
            "worker_cap": CAP,
            "pools_encoded_after_seconds": encoded_after,
            "first_version_seconds": first_versions,
            "first_errors": [e for c in coders for e in c.errors][:5],
            "per_project": per_project(coders),
            **cpu,
        }
    report(results, args.out, backend.log_path if backend.process else None)
    return 0


def report(results: dict, out: Path, log_path: Path | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    wal = "-wal" if results.get("sqlite_wal") else ""
    run = f"{results['database']}{wal}-{'backend' if results['backend'] else 'baseline'}"
    if results["think_seconds"] != [1.0, 3.0]:
        run += "-think{:g}-{:g}".format(*results["think_seconds"])
    if results["projects"] > 1:
        run += f"-projects{results['projects']}x{results['tasks_large']}"
    (out / f"load-{run}.json").write_text(json.dumps(results, indent=2))
    shown = {key: "n/a" if value is None else value for key, value in results.items()}
    shape = (
        f"{results['projects']} projects of {results['tasks_large']} tasks"
        if results["projects"] > 1
        else f"one project of {results['tasks_large']} tasks + 4 of 200"
    )
    database = results["database"] + (" in write-ahead-log mode" if results.get("sqlite_wal") else "")
    print(
        f"\n| measure ({results['coders']} coders, {results['minutes']} min, {shape}; "
        f"Label Studio on {database}, "
        f"{'with the backend' if results['backend'] else 'no backend'}; the large project's coders "
        f"think {results['think_seconds'][0]:g}-{results['think_seconds'][1]:g} s) | value |\n|---|---|"
    )
    print(
        f"| annotations submitted; coder errors (of {shown['next_requests']} /next) | "
        f"{shown['submitted']}; {shown['coder_errors']} |"
    )
    print(f"| /next latency p50 / p99 | {shown['next_ms_p50']} / {shown['next_ms_p99']} ms |")
    print(f"| submit latency p50 / p99 | {shown['submit_ms_p50']} / {shown['submit_ms_p99']} ms |")
    print(f"| webhooks the backend answered | {shown['webhooks']} |")
    print(
        f"| webhook latency p50 / p99 / max | {shown['webhook_ms_p50']} / {shown['webhook_ms_p99']} / "
        f"{shown['webhook_ms_max']} ms |"
    )
    print(f"| train rounds run (failed) | {shown['train_rounds_run']} ({shown['failed_rounds']}) |")
    print(
        f"| worker processes alive at once, max (cap) | {shown['max_worker_processes']} "
        f"({results['worker_cap']}) |"
    )
    print(f"| worker slots held at once, max | {shown['max_slots_held']} |")
    print(
        f"| processes with a worker's command line, max (forked helpers included) | "
        f"{shown['max_worker_processes_with_forked_helpers']} |"
    )
    print(
        f"| worker processes of other backends on the machine, max | "
        f"{shown['max_worker_processes_of_other_backends']} |"
    )
    print(
        f"| peak memory of the backend, sum of RSS / PSS | {shown['peak_memory_gb']} / "
        f"{shown['peak_memory_pss_gb']} GB |"
    )
    print(f"| labels lost (annotations in Label Studio not in the last round) | {shown['labels_lost']} |")
    if results.get("pools_encoded_after_seconds") is not None:
        encoded = results["pools_encoded_after_seconds"]
        print(f"| every pool encoded, after the imports, before any annotation | {encoded} s |")
    if results.get("first_version_seconds"):
        seconds = results["first_version_seconds"]
        slowest = max(seconds, key=seconds.get)
        print(
            f"| first version live after a project's 10th annotation, median / max (project) | "
            f"{statistics.median(seconds.values()):.1f} / {seconds[slowest]} s ({slowest}) |"
        )
    if results.get("cpu_seconds_by_group"):
        used = "; ".join(f"{group} {seconds:g}" for group, seconds in results["cpu_seconds_by_group"].items())
        print(f"| CPU seconds over the loaded phase, by process group ({results['cores']} cores) | {used} |")
        print(f"| CPU idle over the loaded phase | {100 * results['cpu_idle_share']:.0f} % |")
    for row in results["per_project"]:
        print(
            f"| project {row['project']} ({row['coders']} coders): submitted; errors (of /next); "
            f"/next p50 / p99 | {row['submitted']}; {row['coder_errors']} (of {row['next_requests']}); "
            f"{row['next_ms_p50']} / {row['next_ms_p99']} ms |"
        )
    for sample in results["samples_over_cap"] or []:
        print("over the cap:", "; ".join(sample))
    for error in results["first_errors"]:
        print("coder error:", error)
    if log_path:
        print(f"backend log: {log_path}")


if __name__ == "__main__":
    sys.exit(main())
