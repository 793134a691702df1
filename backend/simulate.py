"""Simulated active learning on coded data: the study's protocol, for a grid of configurations.

Protocol, per configuration and seed: draw `initial` segments of the training pool at random
(seeded: every configuration starts from the same set for a given seed), train, evaluate on the
test set; then `rounds` times: the configuration's own model scores the rest of the pool with its
query strategy, the `batch` highest-scoring segments join the labeled set with their known codes,
a model is trained again from scratch and evaluated. Round 0 is the random initial set.

Every finished (configuration, seed) is written to ``OUT/runs/`` at once, so an interrupted run
resumes without redoing it; ``results.csv`` and ``selections.jsonl`` are rebuilt after each one.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score
from tqdm import tqdm

from backend.grid import SimConfig
from backend.model import TrainingDataError, train_model
from backend.scheme import CodingScheme, label_matrix
from backend.segments import Example, held_out_split, keep_coders, keep_codes, read_examples
from backend.strategies import score_pool
from backend.tracking import log_simulation

log = logging.getLogger(__name__)


class SimulationError(ValueError):
    """The protocol or data cannot be simulated; the message names the problem."""


# --- data and protocol -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Protocol:
    """How many segments start labeled, are added per round, and how many rounds; the seeds to repeat with."""

    initial: int
    batch: int
    rounds: int
    seeds: tuple[int, ...]

    @property
    def needed(self) -> int:
        return self.initial + self.batch * self.rounds


@dataclass(frozen=True)
class Corpus:
    """The training pool (its codes are revealed when a segment is chosen) and the test set."""

    codes: tuple[str, ...]
    pool: tuple[Example, ...]
    test: tuple[Example, ...]

    def keys(self, examples: Sequence[Example]) -> list[str]:
        """Ids naming examples in selections: `id`, or `id@coder` when the pool holds a segment twice."""
        seen = Counter(example.id for example in self.pool)
        return [e.id if seen[e.id] < 2 else f"{e.id}@{e.coder}" for e in examples]

    def matrix(self, examples: Sequence[Example]) -> np.ndarray:
        return label_matrix([example.codes for example in examples], self.codes).reshape(-1, len(self.codes))


def load_corpus(
    data: Path,
    test: Path | None,
    *,
    scheme: CodingScheme | None,
    codes: Sequence[str] | None,
    train_coders: Sequence[str] | None,
    test_coders: Sequence[str] | None,
    test_fraction: float,
    split_seed: int,
) -> Corpus:
    """Pool and test set from files: a separate test file, or a held-out split of `data` by segment.

    Coder filters apply after the split, so a lead can train on one coder and test on another
    without a segment on both sides. Segments of a separate test file are taken out of the pool.
    """
    examples = read_examples(data, scheme)
    if test is None:
        if not 0 < test_fraction < 1:
            raise SimulationError(f"--test-fraction must be between 0 and 1, got {test_fraction}")
        pool, held_out = held_out_split(examples, test_fraction, split_seed)
    else:
        held_out = read_examples(test, scheme)
        test_ids = {example.id for example in held_out}
        pool = [example for example in examples if example.id not in test_ids]
        if len(pool) < len(examples):
            log.info("left %d segment(s) of the test set out of the training pool", len(examples) - len(pool))
    pool = keep_coders(pool, train_coders, "--train-coders")
    held_out = keep_coders(held_out, test_coders, "--test-coders")
    chosen = choose_codes(codes, scheme, [*pool, *held_out])
    return Corpus(tuple(chosen), tuple(keep_codes(pool, chosen)), tuple(keep_codes(held_out, chosen)))


def choose_codes(given: Sequence[str] | None, scheme: CodingScheme | None, examples: Sequence[Example]):
    """The codes to learn, in column order: --codes, else the label config's, else those in the data (sorted).

    --codes may leave out codes (e.g. a form's "none" answer); without it, a code outside the
    label config is an error rather than silently dropped.
    """
    present = sorted({code for example in examples for code in example.codes})
    known = scheme.codes if scheme else present
    if given:
        unknown = [code for code in given if code not in known]
        if unknown:
            raise SimulationError(f"--codes: {', '.join(unknown)} not among the codes {', '.join(known)}")
        return list(given)
    stray = [code for code in present if code not in known]
    if stray:
        raise SimulationError(f"codes {', '.join(stray)} are not in the label config ({', '.join(known)})")
    if not known:
        raise SimulationError("no segment carries any code: nothing to learn")
    return list(known)


def protocol_text(protocol: Protocol, corpus: Corpus, source: str) -> str:
    """One paragraph for summary.md: data, split and protocol."""
    return (
        f"Data: {source}. Training pool {len(corpus.pool)} segments, test set {len(corpus.test)}; codes "
        f"{', '.join(corpus.codes)}. Protocol: {protocol.initial} random segments, then {protocol.rounds} "
        f"round(s) of {protocol.batch} chosen by each configuration's query strategy from its own "
        f"predictions; after every round a model is trained from scratch and evaluated on the test set. "
        f"Seeds: {', '.join(map(str, protocol.seeds))} (a seed fixes the initial set and training)."
    )


def check_protocol(protocol: Protocol, corpus: Corpus) -> None:
    """Refuse a protocol the data cannot carry, saying what it needs and what there is."""
    if protocol.initial < 2 or protocol.batch < 1 or protocol.rounds < 0:
        raise SimulationError("need --initial of at least 2, --batch of at least 1 and --rounds of 0 or more")
    if not protocol.seeds:
        raise SimulationError("--seeds: give at least one seed")
    if len(corpus.pool) < protocol.needed:
        raise SimulationError(
            f"too few training segments: --initial {protocol.initial} + --rounds {protocol.rounds} x "
            f"--batch {protocol.batch} needs {protocol.needed}, the training pool holds {len(corpus.pool)}"
        )
    if not corpus.test:
        raise SimulationError("the test set is empty")
    missing = [
        code for code, n in zip(corpus.codes, corpus.matrix(corpus.test).sum(axis=0), strict=True) if not n
    ]
    if missing:
        log.warning("no test segment carries %s: F1 of such a code is 0 by convention", ", ".join(missing))


# --- one (configuration, seed) ---------------------------------------------------------------------


def per_code_f1(truth: np.ndarray, predicted: np.ndarray, codes: Sequence[str]) -> dict[str, float]:
    """macro_f1 and f1_<code> (F1 is 0 for a code neither present nor predicted, as in the study's tables)."""
    scores = f1_score(truth, predicted, average=None, zero_division=0)
    return {
        "macro_f1": float(np.mean(scores)),
        **{f"f1_{c}": float(s) for c, s in zip(codes, scores, strict=True)},
    }


def train(config: SimConfig, seed: int, texts: list[str], labels: np.ndarray, codes: Sequence[str]):
    """A fresh model of the configuration's kind, and its training seconds."""
    from backend.baseline import train_tfidf

    settings = config.settings.model_copy(update={"seed": seed})
    started = time.perf_counter()
    if config.kind == "tfidf":
        model = train_tfidf(texts, labels, codes, settings)
    else:
        with contextlib.redirect_stdout(io.StringIO()):  # the trainers print their loss per step
            model = train_model(texts, labels, codes, settings)
    return model, time.perf_counter() - started


def simulate_pair(
    config: SimConfig, seed: int, protocol: Protocol, corpus: Corpus, progress: tqdm
) -> list[dict]:
    """All rounds of one configuration and seed: one record per round with metrics and the ids added."""
    pool_texts = [example.text for example in corpus.pool]
    pool_labels = corpus.matrix(corpus.pool)
    test_labels = corpus.matrix(corpus.test)
    test_texts = [example.text for example in corpus.test]
    keys = corpus.keys(corpus.pool)
    chosen = list(np.random.default_rng(seed).choice(len(pool_texts), protocol.initial, replace=False))
    labeled: list[int] = []
    rows = []
    for round_number in range(protocol.rounds + 1):
        labeled += chosen
        try:
            model, seconds = train(
                config, seed, [pool_texts[i] for i in labeled], pool_labels[labeled], corpus.codes
            )
        except TrainingDataError as exc:
            raise SimulationError(f"{config.name}, seed {seed}, round {round_number}: {exc}") from None
        scores = per_code_f1(test_labels, model.decide(model.predict_proba(test_texts)), corpus.codes)
        rows.append(
            {
                "round": round_number,
                "n_labeled": len(labeled),
                "train_seconds": round(seconds, 2),
                **scores,
                "selected": [keys[i] for i in chosen],
            }
        )
        progress.set_postfix_str(
            f"{config.name} seed {seed} round {round_number}: macro-F1 {scores['macro_f1']:.3f}"
        )
        progress.update()
        if round_number < protocol.rounds:
            chosen = _query(
                config, model, seed * 1000 + round_number, pool_texts, pool_labels, labeled, protocol
            )
    return rows


def _query(config, model, seed, pool_texts, pool_labels, labeled, protocol) -> list[int]:
    """The `batch` unlabeled pool segments the configuration's strategy ranks highest."""
    unlabeled = sorted(set(range(len(pool_texts))) - set(labeled))
    proba = model.predict_proba([pool_texts[i] for i in unlabeled])
    scores = score_pool(
        config.settings.query_strategy, proba, pool_labels[labeled], thresholds=model.thresholds, seed=seed
    )
    best = np.argsort(-scores, kind="stable")[: protocol.batch]
    return [unlabeled[i] for i in best]


# --- the whole run, resumable ----------------------------------------------------------------------


def fingerprint(protocol: Protocol, corpus: Corpus) -> dict:
    """What must not change between a run and its resumption (seeds and configurations may grow)."""

    def listing(examples):
        return [[e.id, e.coder, list(e.codes), len(e.text)] for e in examples]

    return {
        "initial": protocol.initial,
        "batch": protocol.batch,
        "rounds": protocol.rounds,
        "codes": list(corpus.codes),
        "pool": listing(corpus.pool),
        "test": listing(corpus.test),
    }


def _write_atomically(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of one (an interrupt cannot corrupt it)."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def open_run(out: Path, protocol: Protocol, corpus: Corpus) -> None:
    """Create OUT, or check that the run already in it used the same protocol and data."""
    if out.exists() and not out.is_dir():
        raise SimulationError(f"--out {out}: exists and is not a directory")
    (out / "runs").mkdir(parents=True, exist_ok=True)
    stamp = out / "run.json"
    current = fingerprint(protocol, corpus)
    if stamp.exists():
        before = json.loads(stamp.read_text(encoding="utf-8"))
        changed = [key for key in current if before.get(key) != current[key]]
        if changed:
            raise SimulationError(
                f"{out} holds a simulation with other {', '.join(changed)}: "
                "choose another --out, or delete it to start over"
            )
    else:
        _write_atomically(stamp, json.dumps(current))


def pair_file(out: Path, config: SimConfig, seed: int) -> Path:
    return out / "runs" / f"{config.name}-seed{seed}.json"


def finished_rows(out: Path, config: SimConfig, seed: int) -> list[dict] | None:
    """The rounds of a (configuration, seed) finished earlier, or None; refuses other settings."""
    path = pair_file(out, config, seed)
    if not path.exists():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    if saved["config"] != config.describe():
        changed = sorted(k for k in config.describe() if saved["config"].get(k) != config.describe()[k])
        raise SimulationError(
            f"{path}: configuration {config.name!r} was run with other settings ({', '.join(changed)}): "
            "rename it, or delete the file to run it again"
        )
    return saved["rounds"]


def run_simulation(
    configs: Sequence[SimConfig],
    protocol: Protocol,
    corpus: Corpus,
    out: Path,
    *,
    tracking_uri: str,
    experiment: str,
) -> list[dict]:
    """Run every (configuration, seed) not finished in OUT yet; return all result rows of this grid."""
    check_protocol(protocol, corpus)
    open_run(out, protocol, corpus)
    _quiet_training_output()
    pairs = [(config, seed) for config in configs for seed in protocol.seeds]
    done = {(c.name, s): rows for c, s in pairs if (rows := finished_rows(out, c, s)) is not None}
    if done:
        log.info("resuming in %s: %d of %d runs already finished", out, len(done), len(pairs))
    todo = [(c, s) for c, s in pairs if (c.name, s) not in done]
    with tqdm(
        total=len(todo) * (protocol.rounds + 1),
        unit="round",
        desc="simulate",
        dynamic_ncols=True,
        disable=not todo,  # all finished before: nothing to show
    ) as bar:
        for config, seed in todo:
            rows = simulate_pair(config, seed, protocol, corpus, bar)
            saved = {"config": config.describe(), "seed": seed, "rounds": rows}
            _write_atomically(pair_file(out, config, seed), json.dumps(saved))
            done[(config.name, seed)] = rows
            write_tables(out, pairs, done, corpus.codes)
            params = {
                "config": config.name,
                "seed": seed,
                **config.describe(),
                **_protocol_params(protocol, corpus),
            }
            log_simulation(
                tracking_uri, experiment, f"{config.name}-seed{seed}", params, _mlflow_rounds(rows)
            )
    write_tables(out, pairs, done, corpus.codes)
    return _result_rows(pairs, done)


def _protocol_params(protocol: Protocol, corpus: Corpus) -> dict:
    return {
        "initial": protocol.initial,
        "batch": protocol.batch,
        "rounds": protocol.rounds,
        "pool_size": len(corpus.pool),
        "test_size": len(corpus.test),
        "codes": ",".join(corpus.codes),
    }


def _mlflow_rounds(rows: list[dict]) -> list[dict]:
    return [{"round": row["round"], "selected": row["selected"], "metrics": _metrics_of(row)} for row in rows]


def _metrics_of(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("round", "selected")}


def _result_rows(pairs, done: dict) -> list[dict]:
    rows = []
    for config, seed in pairs:
        for row in done.get((config.name, seed), []):
            rows.append({"config": config.name, "seed": seed, **row})
    return rows


def result_columns(codes: Sequence[str]) -> list[str]:
    return ["config", "seed", "round", "n_labeled", "macro_f1", "train_seconds", *[f"f1_{c}" for c in codes]]


def write_tables(out: Path, pairs, done: dict, codes: Sequence[str]) -> None:
    """results.csv (one row per config, seed and round) and selections.jsonl (the ids added per round)."""
    import csv

    rows = _result_rows(pairs, done)
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=result_columns(codes), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    _write_atomically(out / "results.csv", buffer.getvalue())
    keys = ("config", "seed", "round", "selected")
    lines = [json.dumps({k: row[k] for k in keys}, ensure_ascii=False) + "\n" for row in rows]
    _write_atomically(out / "selections.jsonl", "".join(lines))


def _quiet_training_output() -> None:
    """Our progress bar only: no per-step bars, weight-loading bars or per-round log lines."""
    import datasets
    import setfit
    import transformers

    transformers.utils.logging.set_verbosity_error()  # also turns off the Trainer's step bar
    transformers.utils.logging.disable_progress_bar()
    setfit.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    for chatty in ("backend.model", "small_text"):  # a line per round, per epoch
        logging.getLogger(chatty).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*pin_memory.*")
    # A code with no positive in the labeled set yet: its one-vs-rest model says "no" (expected early on).
    warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
