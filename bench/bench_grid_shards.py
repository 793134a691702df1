"""The research grid three ways: one process, three `--shard` processes at once, and `--queue 3`
taken by three `coding-backend worker --queues grid` processes through a throwaway Redis.

    python bench/bench_grid_shards.py [--seeds 1,2,3,4,5] [--out DIR]

The grid is the TF-IDF part of bench/grid.yaml (CVIAR, random, entropy) on the 98 coded segments
with the results.md protocol (20 initial, 4 rounds of 10). Each way writes its own OUT; the merged
results.csv of the sharded ways must equal the one process's row for row (but for the training
seconds), or the script exits 1. Prints the wall times as a table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

from backend.devtools.local_redis import LocalRedis
from bench.common import DATA

EXECUTABLE = Path(sys.executable).parent / "coding-backend"
GRID = "".join(
    f"- {{name: tfidf-{strategy}, kind: tfidf, query_strategy: {strategy}}}\n"
    for strategy in ("cviar", "random", "entropy")
)
SHARDS = 3


def simulate_command(grid: Path, out: Path, seeds: str, *extra: str) -> list[str]:
    return [
        str(EXECUTABLE),
        "simulate",
        "--data",
        str(DATA / "labels_coder_b.jsonl"),
        "--grid",
        str(grid),
        "--initial",
        "20",
        "--batch",
        "10",
        "--rounds",
        "4",
        "--seeds",
        seeds,
        "--out",
        str(out),
        *extra,
    ]


def run_all(commands: list[list[str]], env: dict[str, str], cwd: Path | None = None) -> None:
    """Start every command at once and wait for all; any failure stops the benchmark."""
    processes = [
        subprocess.Popen(
            command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for command in commands
    ]
    for command, process in zip(commands, processes, strict=True):
        _, stderr = process.communicate()
        if process.returncode != 0:
            sys.exit(f"{' '.join(command[:3])} ... failed:\n{stderr[-2000:]}")


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def results(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "results.csv").drop(columns="train_seconds")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--out", type=Path, help="keep the three OUT folders here (default: a temporary one)")
    args = parser.parse_args()
    if not LocalRedis.available():
        sys.exit("no redis-server here: apt-get install redis-server")
    work = args.out or Path(tempfile.mkdtemp(prefix="bench-grid-"))
    shutil.rmtree(work / "whole", ignore_errors=True)
    shutil.rmtree(work / "shards", ignore_errors=True)
    shutil.rmtree(work / "queued", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    grid = work / "grid.yaml"
    grid.write_text(GRID)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI" and not k.startswith("SLURM")}
    report = [str(EXECUTABLE), "simulate", "--report"]
    rows: list[tuple[str, float, float]] = []

    whole = work / "whole"
    rows.append(
        ("one process", timed(lambda: run_all([simulate_command(grid, whole, args.seeds)], env)), 0.0)
    )

    shards = work / "shards"
    commands = [
        simulate_command(grid, shards, args.seeds, "--shard", f"{i}/{SHARDS}") for i in range(1, SHARDS + 1)
    ]
    ran = timed(lambda: run_all(commands, env))
    rows.append(
        (
            f"{SHARDS} shard processes at once, then --report",
            ran,
            timed(lambda: run_all([[*report, str(shards)]], env)),
        )
    )

    queued = work / "queued"
    with LocalRedis(work / "redis") as redis_server:
        env_redis = {**env, "REDIS_URL": redis_server.url}
        workers = [[str(EXECUTABLE), "worker", "--queues", "grid", "--burst"]] * SHARDS

        def through_rq() -> None:
            run_all([simulate_command(grid, queued, args.seeds, "--queue", str(SHARDS))], env_redis)
            run_all(workers, env_redis, cwd=work)

        ran = timed(through_rq)
    rows.append(
        (
            f"--queue {SHARDS}, {SHARDS} RQ workers, then --report",
            ran,
            timed(lambda: run_all([[*report, str(queued)]], env)),
        )
    )

    runs = len(list((whole / "runs").glob("*.json")))
    print(f"\nTF-IDF grid: 3 configurations x seeds {args.seeds} ({runs} runs) on the 98 coded segments\n")
    print("| how | run | merge |")
    print("|---|---|---|")
    for how, seconds, merge in rows:
        print(f"| {how} | {seconds:.1f} s | {f'{merge:.1f} s' if merge else '-'} |")
    same = all(results(out).equals(results(whole)) for out in (shards, queued))
    print(f"\nresults.csv of every way equal to the one process's (but for train_seconds): {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
