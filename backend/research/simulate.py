"""Simulated active learning on coded data: the study's protocol, for a grid of configurations.

Protocol, per configuration and seed: draw `initial` segments of the training pool at random
(seeded: every configuration starts from the same set for a given seed), or take the codebook's
(`--initial-set codebook`: the same for every seed), train, evaluate on the test set; then
`rounds` times: the configuration's own model scores the rest of the pool with its query strategy,
the `batch` highest-scoring segments join the labeled set with their known codes, a model is
trained again from scratch and evaluated. Round 0 is the initial set.

Every finished (configuration, seed) is kept at once (research/results.py), so an interrupted run
resumes without redoing it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from backend.config import ModelSettings
from backend.learning.base import TrainingDataError
from backend.learning.body_choice import HeldOut, held_out_split, judge_bodies
from backend.learning.cold_start import codebook_ranking
from backend.learning.factories import ModelFactory
from backend.learning.options import JudgeOptions
from backend.learning.setfit_model import SetFitCodingModel, base_model, with_head
from backend.learning.strategies import rank
from backend.learning.validation import Sample
from backend.research.corpus import Corpus
from backend.research.errors import SimulationError
from backend.research.grid import SimConfig
from backend.research.protocol import Protocol, check_protocol, per_code_f1
from backend.research.results import (
    finished_rows,
    open_run,
    pair_file,
    result_rows,
    write_plan,
    write_tables,
)
from backend.research.shards import WHOLE_GRID, Shard
from backend.research.validation import draw_sample, measure
from backend.storage.atomic import write_atomically
from backend.tracking.simulation import log_simulation

log = logging.getLogger(__name__)


def train(config: SimConfig, seed: int, texts: list[str], labels: np.ndarray, codes: Sequence[str]):
    """A fresh model of the configuration's kind, its training seconds, and whether a judged
    fine-tuned body was kept (None when no body was judged)."""
    factory = ModelFactory(config.with_seed(seed).model_options(config.kind))
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the trainers print their loss per step
        judged = config.body_selection == "held_out"
        split = held_out_split(labels, seed, texts) if judged else None  # a text's rows on one side
        if split is None:
            model, kept = factory.train(texts, labels, codes), None
        else:
            model, kept = judged_model(factory, split, texts, labels, codes)
    return model, time.perf_counter() - started, kept


def judged_model(
    factory: ModelFactory, split: HeldOut, texts: list[str], labels: np.ndarray, codes: Sequence[str]
) -> tuple[SetFitCodingModel, bool]:
    """BODY_SELECTION=held_out as the body lane does it (worker/jobs/body.py): fine-tune on the
    training share, keep the body only if a head on it beats one on the base body on the held-out
    share by more than its noise; then the head, as the fast loop fits it, on the chosen body's
    embeddings of all labels.

    Unlike the body lane, every round fine-tunes (the protocol trains from scratch each round, the
    lane every BODY_RETRAIN_EVERY labels), and the verdict is on the pooled held-out share: not
    across coders."""
    fine_tuned = factory.train([texts[i] for i in split.train], labels[split.train], codes)
    base = base_model(codes, factory.options.encoder)
    options = factory.options.head
    tuned, on_base = fine_tuned.embed(texts), base.embed(texts)
    verdict = judge_bodies(tuned, on_base, labels, split, JudgeOptions(options))
    model, embeddings = (fine_tuned, tuned) if verdict.kept else (base, on_base)
    return with_head(model, texts, embeddings, labels, options), verdict.kept


def codebook_initial_set(
    corpus: Corpus, codebook: dict[str, str], settings: ModelSettings, size: int
) -> list[int]:
    """The pool positions the codebook cold start would have coded first (learning/cold_start.py):
    the codes' definitions and the pool embedded with MODEL_NAME's base body."""
    defined = [code for code in corpus.codes if code in codebook]
    if not defined:
        raise SimulationError(
            "--initial-set codebook needs definitions of the codes: `hint`s in the --label-config's <Choice>s"
        )
    body = base_model(defined, settings.encoder_options())
    pool = body.embed([example.text for example in corpus.pool])
    definitions = body.embed([codebook[code] for code in defined])
    ranking = codebook_ranking(pool, definitions, per_code=-(-size // len(defined)))
    return [int(i) for i in ranking.order[:size]]


def simulate_pair(
    config: SimConfig,
    seed: int,
    protocol: Protocol,
    corpus: Corpus,
    progress: tqdm,
    initial: Sequence[int] | None = None,
) -> list[dict]:
    """All rounds of one configuration and seed: one record per round with metrics and the ids added.
    The initial set is `initial` when given (the codebook's), else drawn at random with the seed."""
    pool_texts = [example.text for example in corpus.pool]
    pool_labels = corpus.matrix(corpus.pool)
    test_labels = corpus.matrix(corpus.test)
    test_texts = [example.text for example in corpus.test]
    keys = corpus.keys(corpus.pool)
    rng = np.random.default_rng(seed)
    if initial is None:
        chosen = list(rng.choice(len(pool_texts), protocol.initial, replace=False))
    else:
        chosen = list(initial)
    held = draw_sample(rng, protocol.validation, len(pool_texts), chosen) if protocol.validation else []
    labeled: list[int] = []
    rows = []
    for round_number in range(protocol.rounds + 1):
        labeled += chosen
        try:
            model, seconds, body_kept = train(
                config, seed, [pool_texts[i] for i in labeled], pool_labels[labeled], corpus.codes
            )
        except TrainingDataError as exc:
            raise SimulationError(f"{config.name}, seed {seed}, round {round_number}: {exc}") from None
        test = known(model, test_texts, test_labels)
        scores = per_code_f1(test_labels, test.decided, corpus.codes)
        unlabeled = sorted(set(range(len(pool_texts))) - set(labeled) - set(held))
        last = round_number == protocol.rounds
        rest = (
            None
            if last and not held
            else known(model, [pool_texts[i] for i in unlabeled], pool_labels[unlabeled])
        )
        rows.append(
            {
                "round": round_number,
                "n_labeled": len(labeled),
                "train_seconds": round(seconds, 2),
                **scores,
                "selected": [keys[i] for i in chosen],
                **({} if body_kept is None else {"body_kept": body_kept}),
            }
        )
        if held:
            sample = known(model, [pool_texts[i] for i in held], pool_labels[held])
            rows[-1]["validation"] = measure(corpus.codes, sample, test, rest, pool_labels[labeled], seed)
            if not round_number:
                rows[-1]["validation_sample"] = [keys[i] for i in held]
        progress.set_postfix_str(
            f"{config.name} seed {seed} round {round_number}: macro-F1 {scores['macro_f1']:.3f}"
        )
        progress.update()
        if not last:
            strategy = replace(config.settings.strategy_options(), seed=seed * 1000 + round_number)
            ranking = rank(strategy, rest.proba, pool_labels[labeled], thresholds=model.thresholds)
            chosen = [unlabeled[i] for i in ranking.top(protocol.batch)]
    return rows


def known(model, texts: list[str], truth: np.ndarray) -> Sample:
    """The model's probabilities and decisions for segments whose codes are known."""
    proba = model.predict_proba(texts) if texts else np.zeros((0, truth.shape[1]))
    return Sample(truth=truth, decided=model.decide(proba), proba=proba)


def run_simulation(
    configs: Sequence[SimConfig],
    protocol: Protocol,
    corpus: Corpus,
    out: Path,
    *,
    tracking_uri: str,
    experiment: str,
    description: str,
    shard: Shard = WHOLE_GRID,
    interrupted: Callable[[], bool] = lambda: False,
    initial: Sequence[int] | None = None,
) -> list[dict]:
    """Run every (configuration, seed) of the shard not finished in OUT yet; return the result rows
    of the shard's pairs. Only the whole grid writes the tables; shards leave that to a report.

    `interrupted` is asked before each run: a Ctrl-C that a library swallowed still stops the grid.
    `initial` is the codebook's initial set (pool positions) when the protocol says so."""
    check_protocol(protocol, corpus)
    open_run(out, protocol, corpus, initial)
    quiet_training_output()
    grid = [(config, seed) for config in configs for seed in protocol.seeds]
    write_plan(out, [(c.name, s) for c, s in grid], description)
    mine = shard.take(grid)
    pairs = [(c.name, s) for c, s in mine]
    done = {(c.name, s): rows for c, s in mine if (rows := finished_rows(out, c, s)) is not None}
    if done:
        log.info("resuming in %s: %d of %d runs already finished", out, len(done), len(mine))
    todo = [(c, s) for c, s in mine if (c.name, s) not in done]
    with tqdm(
        total=len(todo) * (protocol.rounds + 1),
        unit="round",
        desc="simulate" if shard.whole else f"shard {shard}",
        dynamic_ncols=True,
        disable=not todo,  # all finished before: nothing to show
    ) as bar:
        for config, seed in todo:
            if interrupted():
                raise KeyboardInterrupt
            rows = simulate_pair(config, seed, protocol, corpus, bar, initial)
            saved = {"config": config.describe(), "seed": seed, "rounds": rows}
            write_atomically(pair_file(out, config.name, seed), json.dumps(saved))
            done[(config.name, seed)] = rows
            if shard.whole:
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
    if shard.whole:
        write_tables(out, pairs, done, corpus.codes)
    return result_rows(pairs, done)


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
    """A round's figures for MLflow; of the validation sample, each code's precision and recall
    estimates with their lower bounds (the figures autocode judges)."""
    metrics = {
        k: v for k, v in row.items() if k not in ("round", "selected", "validation", "validation_sample")
    }
    for code, found in (row.get("validation") or {}).items():
        for figure in ("precision", "recall"):
            interval = found["estimate"][figure]
            if interval["estimate"] is not None:
                metrics[f"validation_{figure}_{code}"] = interval["estimate"]
                metrics[f"validation_{figure}_low_{code}"] = interval["low"]
    return metrics


def quiet_training_output() -> None:
    """Our progress bar only: no per-step bars, weight-loading bars or per-round log lines."""
    import datasets
    import setfit
    import transformers

    transformers.utils.logging.set_verbosity_error()  # also turns off the Trainer's step bar
    transformers.utils.logging.disable_progress_bar()
    setfit.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    for chatty in ("backend.learning.factories", "small_text"):  # a line per round, per epoch
        logging.getLogger(chatty).setLevel(logging.WARNING)
