"""Benchmark of Label Studio's write paths for a new queue head (not a test).

    python bench/bench_writepath.py [--segments 11656] [--repeat 10] [--without-import-flag] [--out bench/out]

Starts Label Studio 1.23.2 (SQLite, its own virtualenv; with the import flag the backend's local
Label Studio runs with, devtools/local_studio.IMPORT_FLAG, unless --without-import-flag), creates a
project with the study's form
holding the whole pool of real segments and one prediction on each (a complete version, as after
the first pre-annotation), and times each way of putting a new queue head live through the
backend's own client (backend/studio/client.py):

- an import call (`POST /api/projects/{id}/import/predictions`) of 1, 10 and 100 predictions;
- a single create (`POST /api/predictions/`), as `studio/writeback.py` writes the queue head;
- an in-place update of one prediction's score (`PATCH /api/predictions/{id}/`);
- switching the project's version, `/next`, and deleting a version that holds only a queue head;
- the whole path of a round: the coder submits, then one create, the switch, `/next` (does it
  serve the new head?), then the rest of a 100-prediction head one by one;
- the same path as `studio/writeback.py` takes it now: each task's one prediction updated in place
  (`PATCH /api/predictions/{id}/` with a new version, result and score), the switch, `/next`.

Prints a table and writes OUT/writepath.json (OUT/writepath-without-import-flag.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import numpy as np

from backend.devtools.local_studio import IMPORT_FLAG
from backend.domain.scheme import parse_label_config
from backend.studio.client import PREDICTION_CHUNK, StudioClient
from backend.studio.predictions import result_items
from bench.common import CONFIG, OUT, label_studio, pool_rows
from tests.helpers import study_form_result

SCHEME = parse_label_config(CONFIG)


def prediction(task: int, version: str, score: float) -> dict:
    """A valid prediction of the study's form (Label Studio silently drops invalid ones)."""
    proba = np.linspace(0.1, 0.9, len(SCHEME.codes))
    result = result_items(SCHEME, proba, np.full(len(SCHEME.codes), 0.5))
    return {"task": task, "model_version": version, "score": score, "result": result}


def seconds_of(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def timed(call: Callable[[], object], repeat: int) -> list[float]:
    return [seconds_of(call) for _ in range(repeat)]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--segments", type=int, default=None, help="import only this many (default: all)")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument(
        "--without-import-flag", action="store_true", help="Label Studio's import recounts every task"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    segments = pool_rows()[: args.segments]
    workdir = Path(tempfile.mkdtemp(prefix="bench-writepath-"))
    flag = {IMPORT_FLAG: "false"} if args.without_import_flag else {}
    with label_studio(workdir, flag) as studio:
        results = {"import_flag": not args.without_import_flag, **run(studio, segments, args.repeat)}
    report(results, args.out)
    return 0


def run(studio, segments: list[dict], repeat: int) -> dict:
    client = StudioClient(studio.url, studio.token, timeout=600)
    sdk = client.sdk
    project = sdk.projects.create(title="bench write path", label_config=CONFIG).id
    for start in range(0, len(segments), 2000):
        rows = [{"text": s["text"], "question": s["question"]} for s in segments[start : start + 2000]]
        sdk.projects.import_tasks(id=project, request=rows)
    tasks = [t.id for t in client.tasks(project, annotated=False, data_only=True)]
    print(f"project {project}: {len(tasks)} tasks", flush=True)
    started = time.perf_counter()
    created = client.import_predictions(project, [prediction(t, "v1", 0.5) for t in tasks])
    full_import = time.perf_counter() - started
    if created != len(tasks):
        raise RuntimeError(f"Label Studio created {created} of {len(tasks)} predictions")
    client.serve_version(project, "v1")
    print(f"a full version imported in {full_import:.0f} s", flush=True)
    rows: dict[str, list[float]] = {}
    headers = {"Authorization": f"Token {studio.token}"}

    def next_task() -> int:
        return httpx.get(f"{studio.url}/api/projects/{project}/next", headers=headers, timeout=120).json()[
            "id"
        ]

    for size in (1, 10, 100):
        rows[f"import call, {size} prediction(s)"] = [
            seconds_of(lambda chunk=chunk: client.import_predictions(project, chunk))
            for chunk in (
                [prediction(t, "vi", 0.5) for t in tasks[n * size : (n + 1) * size]] for n in range(3)
            )
        ]
    head = iter(tasks[1000:])
    rows["single create"] = timed(
        lambda: client.create_prediction(project, prediction(next(head), "vs", 0.5)), repeat
    )
    ids = [p.id for p in sdk.predictions.list(task=tasks[0])]
    rows["in-place score update"] = timed(
        lambda: client.call("update a score", lambda: sdk.predictions.update(ids[0], score=0.4)), repeat
    )
    rows["switch the project's version"] = timed(lambda: client.serve_version(project, "v1"), repeat)
    rows["/next (uncertainty sampling)"] = timed(next_task, repeat)
    rows["delete a version of a 20-prediction head"] = [
        seconds_of(lambda version=version: client.delete_version(project, version))
        for version in (head_only_version(client, project, tasks[5000 + 20 * n :][:20], n) for n in range(3))
    ]
    rows["round: create 1 + switch + /next"], served_right = [], 0
    rows["round: the rest of a 100-prediction head"] = []
    on_screen = next_task()  # Label Studio serves a coder the task they hold until they submit it
    for n in range(3):
        sdk.annotations.create(id=on_screen, result=study_form_result(["physical_health"]))
        version, top = f"vr{n}", tasks[2000 + 100 * n]
        started = time.perf_counter()
        client.create_prediction(project, prediction(top, version, -1.0))
        client.serve_version(project, version)
        on_screen = next_task()
        served_right += on_screen == top
        rows["round: create 1 + switch + /next"].append(time.perf_counter() - started)
        started = time.perf_counter()
        for task in tasks[2001 + 100 * n : 2100 + 100 * n]:
            client.create_prediction(project, prediction(task, version, 0.0))
        rows["round: the rest of a 100-prediction head"].append(time.perf_counter() - started)
    in_place = in_place_rounds(client, project, tasks[2010:2100], next_task, on_screen)
    rows.update(in_place.pop("seconds"))
    return {
        **in_place,
        "tasks": len(tasks),
        "chunk": PREDICTION_CHUNK,
        "full_import_seconds": round(full_import, 1),
        "next_served_the_new_head": f"{served_right} of {len(rows['round: create 1 + switch + /next'])}",
        "seconds": {name: [round(s, 3) for s in values] for name, values in rows.items()},
    }


def in_place_rounds(client: StudioClient, project: int, head: list[int], next_task, on_screen: int) -> dict:
    """Three rounds the way studio/writeback.py writes them: the head's predictions (one per task,
    made by the rounds before) PATCHed to the new version, its top one before the switch."""
    ids = {task: held[0][0] for task, held in client.predictions_of(project, head).items()}
    update = "in-place update (version, result, score)"
    first = "round in place: PATCH 1 + switch + /next"
    rest = f"round in place: the rest of a {len(head)}-prediction head"
    rows: dict[str, list[float]] = {update: [], first: [], rest: []}
    served_right = 0
    for n in range(3):
        client.sdk.annotations.create(id=on_screen, result=study_form_result(["physical_health"]))
        version, top = f"vp{n}", head[n]
        started = time.perf_counter()
        client.update_prediction(project, ids[top], prediction(top, version, -1.0 - n))
        rows[update].append(time.perf_counter() - started)
        client.serve_version(project, version)
        on_screen = next_task()
        served_right += on_screen == top
        rows[first].append(time.perf_counter() - started)
        started = time.perf_counter()
        for task in head[n + 1 :]:
            change = prediction(task, version, 0.0)
            rows[update].append(seconds_of(partial(client.update_prediction, project, ids[task], change)))
        rows[rest].append(time.perf_counter() - started)
    return {"next_served_the_head_updated_in_place": f"{served_right} of 3", "seconds": rows}


def head_only_version(client: StudioClient, project: int, tasks: list[int], n: int) -> str:
    """A version holding predictions of `tasks` only, as a round interrupted after its head."""
    version = f"vd{n}"
    for task in tasks:
        client.create_prediction(project, prediction(task, version, 0.5))
    return version


def report(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    name = "writepath.json" if results["import_flag"] else "writepath-without-import-flag.json"
    (out / name).write_text(json.dumps(results, indent=2))
    print(f"\nLabel Studio's import flag {'on' if results['import_flag'] else 'off'}")
    print(f"{results['tasks']} tasks; a full version imported in {results['full_import_seconds']} s")
    print(f"/next served the new head right after the switch: {results['next_served_the_new_head']}")
    print(f"... and the head updated in place: {results['next_served_the_head_updated_in_place']}\n")
    print("| call | n | median | min | max |\n|---|---|---|---|---|")
    for name, values in results["seconds"].items():
        print(
            f"| {name} | {len(values)} | {statistics.median(values):.2f} s "
            f"| {min(values):.2f} s | {max(values):.2f} s |"
        )


if __name__ == "__main__":
    sys.exit(main())
