"""Why the head misses mental health, and what principled signal helps (issue 38 item 5; not a test).

    python bench/bench_mental_health.py [--draws 20] [--sizes 45,70] [--out bench/out]

On the 98 coded segments (read from ../shared/data at run time), for each training size, `--draws`
random training sets (the rest is the test set), the product's head (balanced logistic regressions,
tuned thresholds shrunk toward 0.5) on the bundled model's base embeddings, with:

- embeddings: FEATURES=embeddings, the default;
- tfidf+embeddings: TF-IDF fitted on the 11,656 pool segments beside them;
- + definition: the cosine of the segment's embedding to each code's codebook definition (the
  label config's `hint`s), one column per code;
- + definition per sentence: the same, the highest over the segment's sentences: a feeling said in
  one sentence of a long answer about the body is not averaged away with the rest;
- unweighted: class_weight none (CLASS_WEIGHT=none) instead of balanced.

Prints F1 per code (mean ± sd over the draws), the paired difference of mental health's F1 from
the default, and what the default gets wrong on mental health: how often a positive is missed, by
whether it names a feeling in so many words (a short list of German feeling words) and by its
length. Writes OUT/mental_health.json.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from scipy import sparse
from sklearn.metrics import f1_score
from sklearn.preprocessing import normalize

from backend.domain.scheme import parse_label_config
from backend.learning import heads
from backend.learning.features import Lexicon
from backend.research.report import markdown_table
from backend.resources import label_config
from bench.common import STUDY_CODES, coded_with_base_body, draws_arguments, pool_rows

CODES = STUDY_CODES
MENTAL = CODES.index("mental_health")
# Feelings named in so many words (the hint: mood, worries, fear, stress, happiness, self-esteem)
FEELING_WORDS = re.compile(
    r"angst|ängst|traurig|sorge|glücklich|wütend|einsam|stress|nervös|fröhlich|unglücklich|weinen|"
    r"schäm|mutig|selbstbewusst|gefühl",
    re.IGNORECASE,
)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    return [part for part in SENTENCE_END.split(text) if part.strip()] or [text]


def definition_similarity(body, texts: list[str], definitions: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of each segment to each definition: of the whole segment, and the highest over its
    sentences."""
    defined = normalize(body.embed(definitions))
    whole = normalize(body.embed(texts)) @ defined.T
    parts = [sentences(text) for text in texts]
    flat = normalize(body.embed([s for part in parts for s in part])) @ defined.T
    bounds = np.cumsum([0, *map(len, parts)])
    per_sentence = np.stack([flat[a:b].max(axis=0) for a, b in itertools.pairwise(bounds)])
    return whole, per_sentence


def one_draw(features, matrix, train, test, options) -> tuple[dict, np.ndarray]:
    """F1 per code and macro-F1 on the test rest; the test decisions."""
    groups = np.arange(len(train))
    head = heads.fit_head(features[train], matrix[train], options)
    thresholds = heads.head_thresholds(features[train], matrix[train], options, groups)
    decided = (head.predict_proba(features[test]) >= thresholds).astype(int)
    per_code = f1_score(matrix[test], decided, average=None, zero_division=0)
    return {"macro": float(per_code.mean()), **dict(zip(CODES, map(float, per_code), strict=True))}, decided


def main() -> None:
    args = draws_arguments(__doc__.splitlines()[0], draws=20, sizes="45,70")
    rows, texts, matrix, body = coded_with_base_body()
    embeddings = body.embed(texts)
    codebook = parse_label_config(label_config("interview_coding")).codebook()
    whole, per_sentence = definition_similarity(body, texts, [codebook[code] for code in CODES])
    lexical = Lexicon.fit([row["text"] for row in pool_rows()] + texts).beside(texts, embeddings)
    options = heads.HeadOptions()  # the product's: balanced, tuned thresholds shrunk toward 0.5
    variants = {
        "embeddings": (embeddings, options),
        "tfidf+embeddings": (lexical, options),
        "embeddings + definition": (np.hstack([embeddings, whole]), options),
        "embeddings + definition per sentence": (np.hstack([embeddings, per_sentence]), options),
        "tfidf+embeddings + definition per sentence": (
            sparse.hstack([lexical, sparse.csr_matrix(per_sentence)], format="csr"),
            options,
        ),
        "embeddings, unweighted": (embeddings, replace(options, class_weight="none")),
        "tfidf+embeddings, unweighted": (lexical, replace(options, class_weight="none")),
    }
    rng = np.random.default_rng(0)
    sizes = [int(size) for size in args.sizes.split(",")]
    draws = {size: [rng.permutation(len(rows)) for _ in range(args.draws)] for size in sizes}
    results: dict = {"positives": int(matrix[:, MENTAL].sum()), "segments": len(rows)}
    cues = np.array([bool(FEELING_WORDS.search(text)) for text in texts])
    long = np.array([len(text) for text in texts]) > np.median([len(text) for text in texts])
    results["mental_health_with_feeling_words"] = int(cues[matrix[:, MENTAL] == 1].sum())
    results["others_with_feeling_words"] = int(cues[matrix[:, MENTAL] == 0].sum())
    results["mental_health_with_physical_health"] = int((matrix[:, MENTAL] & matrix[:, 0]).sum())
    for size, orders in draws.items():
        for name, (features, head_options) in variants.items():
            runs, missed = [], []
            for order in orders:
                train, test = order[:size], order[size:]
                figures, decided = one_draw(features, matrix, train, test, head_options)
                runs.append(figures)
                positive = matrix[test, MENTAL] == 1
                missed += [(int(i), int(decided[k, MENTAL] == 0)) for k, i in enumerate(test) if positive[k]]
            results[f"{name} @{size}"] = {
                "f1": {key: [run[key] for run in runs] for key in runs[0]},
                "missed": _missed_by(missed, cues, long),
            }
        print(report(results, size, list(variants)), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mental_health.json").write_text(json.dumps(results, indent=2))


def _missed_by(missed: list[tuple[int, int]], cues: np.ndarray, long: np.ndarray) -> dict:
    """The share of mental-health positives in test sets that the head missed, by kind of segment."""
    segment, miss = np.array(missed).T
    share = {"all": (miss.mean(), len(miss))}
    for label, mask in (
        ("feeling words", cues),
        ("no feeling words", ~cues),
        ("long", long),
        ("short", ~long),
    ):
        chosen = mask[segment]
        share[label] = (float(miss[chosen].mean()) if chosen.any() else None, int(chosen.sum()))
    return {key: {"missed": value, "tested": n} for key, (value, n) in share.items()}


def report(results: dict, size: int, names: list[str]) -> str:
    """F1 per code with spread, mental health's paired difference from the default, and its misses."""
    default = np.array(results[f"embeddings @{size}"]["f1"]["mental_health"])
    body = []
    for name in names:
        figures = results[f"{name} @{size}"]["f1"]
        cells = [
            f"{np.mean(figures[key]):.3f} ± {np.std(figures[key], ddof=1):.3f}" for key in ["macro", *CODES]
        ]
        gain = np.array(figures["mental_health"]) - default
        body.append(
            [name, *cells, f"{gain.mean():+.3f} ± {gain.std(ddof=1):.3f} ({(gain > 0).sum()}/{len(gain)})"]
        )
    header = ["features @" + str(size), "macro-F1", *CODES, "mental − default (draws ahead)"]
    misses = [
        [
            name,
            *(
                _share(results[f"{name} @{size}"]["missed"][k])
                for k in ("all", "feeling words", "no feeling words", "long", "short")
            ),
        ]
        for name in names
    ]
    miss_header = ["missed mental-health positives", "all", "feeling words", "none", "long", "short"]
    return markdown_table(header, body) + "\n\n" + markdown_table(miss_header, misses)


def _share(cell: dict) -> str:
    return "–" if cell["missed"] is None else f"{cell['missed']:.2f} (n={cell['tested']})"


if __name__ == "__main__":
    main()
