"""Benchmark of the lead's page (not a test): how fast `/status/<project>` answers with many rounds.

    python bench/bench_status.py [--rounds 100] [--requests 30]

Writes a project state with `--rounds` rounds of figures for the study's seven codes (as the
worker records them), builds the app in this process (no server: the page's own cost) and times:

- the first request after start (it loads the templates and renders three SVG plots);
- a request after each new round (the state changed: the page is rendered again);
- a repeated request (the state did not change: the page comes from the cache).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.config import load_settings
from backend.server.app import create_app
from backend.storage.layout import ProjectDir
from backend.storage.state import RoundFigures, StateStore
from tests.fakes import RecordingQueue

CODES = [
    "physical_health",
    "mental_health",
    "daily_functioning",
    "health_unspecific",
    "none",
    "freq_mentioned",
    "freq_not_mentioned",
]
AUTH = ("lead", "bench-pass-1")


def figures(round_number: int) -> RoundFigures:
    return RoundFigures(
        version=f"v{round_number}-20261201000000",
        finished_at="2026-12-01T00:00:00+00:00",
        labeled=10 + round_number,
        label_counts={code: round_number // (j + 1) for j, code in enumerate(CODES)},
        f1={code: min(1.0, 0.3 + 0.005 * round_number + 0.05 * j) for j, code in enumerate(CODES)},
        macro_f1=0.5,
        changed_share=1 / (round_number + 1),
        stop=False,
        mlflow_run=f"1/run{round_number}",
    )


def timed(client, path: str) -> float:
    started = time.perf_counter()
    response = client.get(path, auth=AUTH)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.status_code
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-status-"))
    states = StateStore(ProjectDir(root, "1"))
    states.update(lambda state: setattr(state, "figures", [figures(n) for n in range(args.rounds)]))
    settings = load_settings(
        model_dir=root,
        basic_auth_user=AUTH[0],
        basic_auth_pass=AUTH[1],
        mlflow_tracking_uri="http://localhost:5000",
    )
    client = create_app(settings, RecordingQueue()).test_client()
    first = timed(client, "/status/1")
    after_round = []
    for n in range(args.rounds, args.rounds + args.requests):
        states.update(lambda state, n=n: state.add_figures(figures(n)))
        after_round.append(timed(client, "/status/1"))
    cached = [timed(client, "/status/1") for _ in range(args.requests)]
    print(f"\n| /status/<project>, {args.rounds} rounds, 7 codes, 3 plots | ms |\n|---|---|")
    print(f"| first request after start (loads the templates) | {first:.0f} |")
    print(
        f"| after a new round (rendered), median / max of {args.requests} | "
        f"{statistics.median(after_round):.0f} / {max(after_round):.0f} |"
    )
    print(
        f"| unchanged state (cached), median / max of {args.requests} | "
        f"{statistics.median(cached):.1f} / {max(cached):.1f} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
