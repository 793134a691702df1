"""A simulation's results on disk: resumable runs, ``results.csv`` and ``selections.jsonl``.

Every finished (configuration, seed) is written to ``OUT/runs/`` at once, so an interrupted run
resumes without redoing it; the tables are rebuilt after each one. ``OUT/run.json`` fixes the
protocol and data, so a resumption with other ones is refused. ``OUT/plan.json`` lists the grid's
(configuration, seed) pairs in order and describes the protocol: what merges the runs of shards
that ran apart (research/shards.py) into the same tables.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

from backend.research.corpus import Corpus
from backend.research.errors import SimulationError
from backend.research.grid import SimConfig
from backend.research.protocol import Protocol
from backend.storage.atomic import write_atomically


def fingerprint(protocol: Protocol, corpus: Corpus, initial: Sequence[int] | None = None) -> dict:
    """What must not change between a run and its resumption (seeds and configurations may grow);
    a codebook start keeps the segments it chose, which depend on MODEL_NAME and the hints."""

    def listing(examples):
        return [[e.id, e.coder, list(e.codes), len(e.text)] for e in examples]

    return {
        "initial": protocol.initial,
        "batch": protocol.batch,
        "rounds": protocol.rounds,
        "initial_set": protocol.initial_set,
        "validation": protocol.validation,
        "initial_segments": None if initial is None else corpus.keys([corpus.pool[i] for i in initial]),
        "codes": list(corpus.codes),
        "pool": listing(corpus.pool),
        "test": listing(corpus.test),
    }


def open_run(out: Path, protocol: Protocol, corpus: Corpus, initial: Sequence[int] | None = None) -> None:
    """Create OUT, or check that the run already in it used the same protocol, data and (codebook)
    initial set."""
    if out.exists() and not out.is_dir():
        raise SimulationError(f"--out {out}: exists and is not a directory")
    (out / "runs").mkdir(parents=True, exist_ok=True)
    stamp = out / "run.json"
    current = fingerprint(protocol, corpus, initial)
    if stamp.exists():
        before = json.loads(stamp.read_text(encoding="utf-8"))
        before.setdefault("initial_set", "random")  # runs from before the codebook cold start
        before.setdefault("initial_segments", None)
        before.setdefault("validation", 0)  # runs from before the simulated validation sample
        changed = [key for key in current if before.get(key) != current[key]]
        if changed:
            raise SimulationError(
                f"{out} holds a simulation with other {', '.join(changed)}: "
                "choose another --out, or delete it to start over"
            )
    else:
        write_atomically(stamp, json.dumps(current))


def pair_file(out: Path, name: str, seed: int) -> Path:
    return out / "runs" / f"{name}-seed{seed}.json"


def finished_rows(out: Path, config: SimConfig, seed: int) -> list[dict] | None:
    """The rounds of a (configuration, seed) finished earlier, or None; refuses other settings."""
    path = pair_file(out, config.name, seed)
    if not path.exists():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    if saved["config"] != config.describe():
        now = config.describe()
        changed = sorted(k for k in {*now, *saved["config"]} if saved["config"].get(k) != now.get(k))
        raise SimulationError(
            f"{path}: configuration {config.name!r} was run with other settings ({', '.join(changed)}): "
            "rename it, or delete the file to run it again"
        )
    return saved["rounds"]


def result_rows(pairs: Sequence[tuple[str, int]], done: dict) -> list[dict]:
    """The rows of the finished (configuration name, seed) pairs, in the pairs' order."""
    rows = []
    for name, seed in pairs:
        for row in done.get((name, seed), []):
            rows.append({"config": name, "seed": seed, **row})
    return rows


def write_plan(out: Path, pairs: Sequence[tuple[str, int]], description: str) -> None:
    """Every (configuration, seed) of the grid in order, and the protocol in words for summary.md.

    Pairs of earlier runs into OUT stay in the plan (a resume with fewer --configs or --seeds must
    not drop finished runs from the report); new ones are added after them."""
    path = out / "plan.json"
    earlier = json.loads(path.read_text(encoding="utf-8"))["pairs"] if path.exists() else []
    known = {tuple(pair) for pair in earlier}
    merged = earlier + [[name, seed] for name, seed in pairs if (name, seed) not in known]
    plan = {"pairs": merged, "description": description}
    write_atomically(path, json.dumps(plan, ensure_ascii=False))


def merge_runs(out: Path) -> tuple[list[tuple[str, int]], dict, list[str], str]:
    """The plan's pairs, their finished rows, the codes and the description, read from OUT as
    the shards left it; names the runs that are missing."""
    plan_file, stamp = out / "plan.json", out / "run.json"
    if not plan_file.is_file() or not stamp.is_file():
        raise SimulationError(f"--report {out}: no simulation there (plan.json or run.json missing)")
    plan = json.loads(plan_file.read_text(encoding="utf-8"))
    pairs = [(name, seed) for name, seed in plan["pairs"]]
    done, missing = {}, []
    for name, seed in pairs:
        path = pair_file(out, name, seed)
        if path.is_file():
            done[(name, seed)] = json.loads(path.read_text(encoding="utf-8"))["rounds"]
        else:
            missing.append(f"{name} seed {seed}")
    if missing:
        raise SimulationError(
            f"--report {out}: {len(missing)} of {len(pairs)} runs not finished yet ({', '.join(missing)}); "
            "finish their shards (the same command resumes), then report again"
        )
    codes = json.loads(stamp.read_text(encoding="utf-8"))["codes"]
    return pairs, done, codes, plan["description"]


FIXED_COLUMNS = ("config", "seed", "round", "n_labeled", "macro_f1", "train_seconds")


def result_columns(codes: Sequence[str], judged: bool = False) -> list[str]:
    """The columns of results.csv; `body_kept` when a configuration judged its bodies."""
    columns = [*FIXED_COLUMNS, *[f"f1_{c}" for c in codes]]
    return [*columns, "body_kept"] if judged else columns


def write_tables(out: Path, pairs: Sequence[tuple[str, int]], done: dict, codes: Sequence[str]) -> None:
    """results.csv (one row per config, seed and round) and selections.jsonl (the ids added per round)."""
    import csv

    rows = result_rows(pairs, done)
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer,
        fieldnames=result_columns(codes, any("body_kept" in row for row in rows)),
        extrasaction="ignore",
        lineterminator="\n",
    )
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(out / "results.csv", buffer.getvalue())
    keys = ("config", "seed", "round", "selected")
    lines = [json.dumps({k: row[k] for k in keys}, ensure_ascii=False) + "\n" for row in rows]
    write_atomically(out / "selections.jsonl", "".join(lines))
