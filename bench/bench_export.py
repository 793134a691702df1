"""Benchmark of `coding-backend export` (not a test): time and memory to write the study's 11,656 segments.

    python bench/bench_export.py [--scale 10]

The segments are read from the shared data at run time (never copied). Made-up provenance: every
10th segment coded by one coder, every 30th also by a second who disagrees, the rest decided by a
made-up model version (random probabilities). Each format is exported in a fresh process, from tasks
made one at a time as Label Studio's pages bring them (the table writers never hold the corpus; a
`.qdpx` is built whole). Reported: wall time, the peak of Python's allocations during the export
(tracemalloc, a separate run) and the process's peak resident size. `--scale N` repeats the corpus N
times (new task ids) for the table formats, to show that their memory does not grow with the corpus.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from backend.domain.coders import CoderNames
from backend.domain.scheme import parse_label_config
from backend.domain.tasks import Task
from backend.exports.qdpx import Layout, write_qdpx
from backend.exports.rows import ModelView, RowMaker, data_fields
from backend.exports.tables import write_table
from backend.studio.setup import segment_tasks
from bench.common import CONFIG, pool_rows
from tests.helpers import study_form_result

CODES = ["physical_health", "mental_health", "daily_functioning", "health_unspecific", "freq_mentioned"]
EMAILS = {1: "a@example.org", 2: "b@example.org"}


def annotation(task_id: int, user: int, codes: list[str]) -> dict:
    return {
        "id": 10 * task_id + user,
        "completed_by": user,
        "result": study_form_result(codes),
        "updated_at": f"2026-01-01T0{user}:00",
    }


def tasks(rows: list[dict], repeat: int):
    """The segments as Label Studio tasks, one at a time (as the client's pages bring them)."""
    data = segment_tasks(rows)
    for copy in range(repeat):
        for i, task_data in enumerate(data):
            task_id = copy * len(data) + i
            annotations = ()
            if i % 10 == 0:
                annotations = (annotation(task_id, 1, CODES[i % 5 : i % 5 + 1]),)
            if i % 30 == 0:
                annotations += (annotation(task_id, 2, CODES[(i + 1) % 5 : (i + 1) % 5 + 1]),)
            yield Task(task_id, task_data, annotations)


def model_view(n: int) -> ModelView:
    rng = np.random.default_rng(0)
    proba = rng.random((n, len(CODES)))
    pool = type("Pool", (), {"task_ids": np.arange(n), "proba": proba, "decisions": proba > 0.7})
    return ModelView.of("v9-20260101120000", CODES, pool)


def export(fmt: str, repeat: int, traced: bool, out: Path, results) -> None:
    rows = pool_rows()
    scheme = parse_label_config(CONFIG)
    first = next(tasks(rows, 1))
    maker = RowMaker(
        scheme,
        "majority",
        EMAILS,
        CoderNames(bytes(32)),
        model_view(len(rows) * repeat),
        data_fields(first, "text"),
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    if fmt == "qdpx":
        written = write_qdpx(
            maker, list(tasks(rows, repeat)), Layout("interview_id", "speech_index"), out, "bench"
        )
    else:
        written = write_table(maker.rows(tasks(rows, repeat)), maker.columns(), out, fmt, maker.kinds())
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if traced else None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results.put((written, seconds, peak, before, rss, out.stat().st_size))


def run(fmt: str, repeat: int, traced: bool, folder: Path) -> tuple:
    results = multiprocessing.get_context("spawn").Queue()
    process = multiprocessing.get_context("spawn").Process(
        target=export, args=(fmt, repeat, traced, folder / f"corpus-{repeat}.{fmt}", results)
    )
    process.start()
    process.join()  # the result is a small tuple: the queue holds it without a reader
    if process.exitcode != 0:
        raise SystemExit(f"the {fmt} export failed (exit status {process.exitcode}); its error is above")
    return results.get(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", type=int, default=10, help="repeat the corpus this often for the tables (10)"
    )
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} cores")
    print("| format | segments | seconds | Python peak (MiB) | RSS before → peak (MiB) | file (MiB) |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        plan = [(fmt, 1) for fmt in ("csv", "jsonl", "parquet", "qdpx")]
        plan += [(fmt, args.scale) for fmt in ("csv", "parquet")] if args.scale > 1 else []
        for fmt, repeat in plan:
            written, seconds, _, before, rss, size = run(fmt, repeat, False, Path(folder))
            _, _, peak, _, _, _ = run(fmt, repeat, True, Path(folder))
            mib, rss_mib = 2**20, f"{before / 1024:.0f} → {rss / 1024:.0f}"
            print(
                f"| {fmt} | {written:,} | {seconds:.1f} | {peak / mib:.1f} | {rss_mib} | {size / mib:.1f} |",
                flush=True,
            )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
