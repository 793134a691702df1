"""Coder-by-coder transfer (`simulate --cross-coders`): does a model trained on one coder's codes
reflect that coder's understanding, and how does it fare on another coder's?

Per configuration and seed, the segments are split in two by id (research/corpus.py's held-out
split, stratified by rarest code, seeded by the run's seed), so no segment is on both sides. For
each coder, a model is trained on that coder's codes of the training side and tested on each
coder's codes of the test side: the diagonal is a coder's own held-out segments, the rest is
transfer. Beside it, each pair of coders is compared on the segments both coded, with one coder's
codes as predictions of the other's (F1 is symmetric in the two), so model and humans are on one
scale. F1 of a code neither present nor predicted is undefined (empty in the CSV, "–" in the
tables) and left out of macro-F1: two coders who both never saw a code do not disagree on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from itertools import permutations
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from backend.domain.agreement import pairwise_kappa
from backend.domain.scheme import label_matrix
from backend.learning.base import TrainingDataError
from backend.research.corpus import Example, held_out_split
from backend.research.errors import DataError
from backend.research.grid import SimConfig
from backend.research.protocol import per_code_f1
from backend.research.report import markdown_table, over_seeds
from backend.storage.atomic import write_atomically

log = logging.getLogger(__name__)
FILES = ("cross_coders.csv", "coder_pairs.csv", "cross_coders.md", "cross_coders.png")

# simulate.train: the model, its training seconds, and whether a judged fine-tuned body was kept
Train = Callable[[SimConfig, int, list[str], np.ndarray, Sequence[str]], tuple[object, float, bool | None]]
UNDEFINED = float("nan")  # F1 of a code neither present nor predicted
Split = Callable[[Sequence[Example], float, int], tuple[list[Example], list[Example]]]


def coders_of(examples: Sequence[Example]) -> list[str]:
    """The coders of the data, sorted; refuses data without two coders or with unnamed ones."""
    unnamed = [example.id for example in examples if not example.coder]
    if unnamed:
        raise DataError(
            f"--cross-coders needs the coder of every segment; {len(unnamed)} have none "
            f'(e.g. {", ".join(unnamed[:3])}): JSONL lines need a "coder", exports the annotator'
        )
    coders = sorted({str(example.coder) for example in examples})
    if len(coders) < 2:
        raise DataError(f"--cross-coders needs codes by two or more coders; the data has {len(coders)}")
    return coders


def _matrix(examples: Sequence[Example], codes: Sequence[str]) -> np.ndarray:
    return label_matrix([example.codes for example in examples], codes).reshape(-1, len(codes))


def transfer_rows(
    configs: Sequence[SimConfig],
    seeds: Sequence[int],
    examples: Sequence[Example],
    codes: Sequence[str],
    test_fraction: float,
    train: Train,
    split: Split = held_out_split,
) -> list[dict]:
    """One row per (configuration, seed, training coder, test coder): macro-F1 and F1 per code."""
    coders = coders_of(examples)
    rows = []
    with tqdm(total=len(configs) * len(seeds) * len(coders), unit="model", desc="cross-coders") as bar:
        for config in configs:
            for seed in seeds:
                pool, test = split(examples, test_fraction, seed)
                if not pool or not test:
                    raise DataError(
                        f"seed {seed}: the split by segment left the {'test' if pool else 'training'} side "
                        f"empty ({len(pool)} training, {len(test)} test segments); change --test-fraction"
                    )
                for trainer in coders:
                    mine = [example for example in pool if example.coder == trainer]
                    model = _trained(train, config, seed, trainer, mine, codes)
                    bar.update()
                    if model is None:
                        continue
                    for tester in coders:
                        theirs = [example for example in test if example.coder == tester]
                        if not theirs:
                            continue
                        predicted = model.decide(model.predict_proba([example.text for example in theirs]))
                        rows.append(
                            {
                                "config": config.name,
                                "seed": seed,
                                "train_coder": trainer,
                                "test_coder": tester,
                                "n_train": len(mine),
                                "n_test": len(theirs),
                                **per_code_f1(_matrix(theirs, codes), predicted, codes, UNDEFINED),
                            }
                        )
    return rows


def _trained(train: Train, config: SimConfig, seed: int, coder: str, mine: list[Example], codes):
    """A model on one coder's training side; None (with a warning) when the coder coded nothing
    there or too little to train on: that row of the table stays empty, the rest goes on."""
    if not mine:
        log.warning("%s, seed %d: coder %s coded no training segment: no model", config.name, seed, coder)
        return None
    try:
        model, *_ = train(config, seed, [example.text for example in mine], _matrix(mine, codes), codes)
    except TrainingDataError as exc:
        log.warning(
            "%s, seed %d: no model of coder %s's %d segments: %s", config.name, seed, coder, len(mine), exc
        )
        return None
    return model


def coder_pair_rows(examples: Sequence[Example], codes: Sequence[str]) -> list[dict]:
    """One row per ordered pair of coders on the segments both coded: the first coder's codes scored
    as predictions of the second's (macro-F1 and F1 per code) and their pooled Cohen's kappa."""
    coded = {coder: {e.id: e.codes for e in examples if e.coder == coder} for coder in coders_of(examples)}
    rows = []
    for coder, truth in permutations(coded, 2):
        shared = sorted(set(coded[coder]) & set(coded[truth]))
        if not shared:
            continue
        theirs = label_matrix([coded[truth][segment] for segment in shared], codes).reshape(-1, len(codes))
        mine = label_matrix([coded[coder][segment] for segment in shared], codes).reshape(-1, len(codes))
        units = np.stack([mine.ravel(), theirs.ravel()]).astype(float)
        kappa = pairwise_kappa([coder, truth], units)[f"{coder} | {truth}"]["kappa"]
        rows.append(
            {
                "coder": coder,
                "against": truth,
                "shared": len(shared),
                "kappa": kappa,
                **per_code_f1(theirs, mine, codes, UNDEFINED),
            }
        )
    return rows


def write_cross_coders(out: Path, transfer: list[dict], pairs: list[dict], codes: Sequence[str], about: str):
    """The two tables as CSV, cross_coders.md and the heatmaps, in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in zip(FILES[:2], (transfer, pairs), strict=True):
        write_atomically(out / name, pd.DataFrame(rows).to_csv(index=False))
    write_atomically(out / FILES[2], cross_coders_markdown(transfer, pairs, codes, about))
    _plot(pd.DataFrame(transfer), pd.DataFrame(pairs), out / FILES[3])


def _mean_sd(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "–"
    if len(values) < 2:
        return f"{values.mean():.2f}"
    return f"{values.mean():.2f} ± {values.std():.2f}"


def _grid(frame: pd.DataFrame, coders: list[str], column: str) -> list[list[str]]:
    """Rows: training coder; columns: test coder; cells: mean ± sd of `column` over seeds."""
    return [
        [
            f"**{trainer}**",
            *[
                _mean_sd(frame[(frame.train_coder == trainer) & (frame.test_coder == tester)][column])
                for tester in coders
            ],
        ]
        for trainer in coders
    ]


def cross_coders_markdown(transfer: list[dict], pairs: list[dict], codes: Sequence[str], about: str) -> str:
    """Per configuration: the coder × coder macro-F1 and per-code F1 tables, then the coders' own."""
    frame = pd.DataFrame(transfer)
    coders = sorted(
        {*frame.get("train_coder", []), *frame.get("test_coder", []), *(r["coder"] for r in pairs)}
    )
    parts = ["# Coder-by-coder transfer", about]
    for config in dict.fromkeys(frame.get("config", [])):
        rows = frame[frame.config == config]
        header = ["trained on ↓ / tested on →", *coders]
        parts += [
            f"## {config}: macro-F1 ({over_seeds(rows)})",
            markdown_table(header, _grid(rows, coders, "macro_f1")),
        ]
        for code in codes:
            per_code = markdown_table(header, _grid(rows, coders, f"f1_{code}"))
            parts += [f"### {config}: F1 of {code}", per_code]
    parts += [
        "## The coders against each other, on the segments both coded",
        "Macro-F1 of one coder's codes scored against the other's (symmetric), pooled Cohen's kappa "
        "over (segment, code) decisions, and the number of shared segments.",
        markdown_table(["coders", "shared", "macro-F1", "kappa", *codes], _pair_cells(pairs, codes)),
    ]
    return "\n\n".join(parts) + "\n"


def _pair_cells(pairs: list[dict], codes: Sequence[str]) -> list[list[str]]:
    cells = []
    for row in pairs:
        if row["coder"] > row["against"]:  # each unordered pair once: the figures are symmetric
            continue
        kappa = "–" if row["kappa"] is None else f"{row['kappa']:.2f}"
        per_code = [_two_digits(row[f"f1_{code}"]) for code in codes]
        name = f"{row['coder']} ↔ {row['against']}"
        cells.append([name, str(row["shared"]), _two_digits(row["macro_f1"]), kappa, *per_code])
    return cells


def _two_digits(value: float) -> str:
    return "–" if np.isnan(value) else f"{value:.2f}"


def _plot(transfer: pd.DataFrame, pairs: pd.DataFrame, path: Path) -> None:
    """Heatmaps of macro-F1: one per configuration (trained on × tested on), and the coders' own."""
    from backend.research.report import pyplot

    plt = pyplot()
    coders = sorted(
        {*transfer.get("train_coder", []), *transfer.get("test_coder", []), *pairs.get("coder", [])}
    )
    panels = [
        (
            config,
            transfer[transfer.config == config],
            "train_coder",
            "test_coder",
            ("tested on", "trained on"),
        )
        for config in dict.fromkeys(transfer.get("config", []))
    ]
    panels.append(("coders against each other", pairs, "coder", "against", ("", "")))
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, (title, frame, rows, columns, (xlabel, ylabel)) in zip(axes.flat, panels, strict=True):
        grid = np.full((len(coders), len(coders)), np.nan)
        if not frame.empty:
            means = frame.groupby([rows, columns])["macro_f1"].mean()
            for (row, column), value in means.items():
                grid[coders.index(row), coders.index(column)] = value
        ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
        for (i, j), value in np.ndenumerate(grid):
            if not np.isnan(value):
                ax.text(
                    j, i, f"{value:.2f}", ha="center", va="center", color="white" if value < 0.6 else "black"
                )
        ax.set(
            title=title, xlabel=xlabel, ylabel=ylabel, xticks=range(len(coders)), yticks=range(len(coders))
        )
        ax.set_xticklabels(coders, rotation=30, ha="right", fontsize="small")
        ax.set_yticklabels(coders, fontsize="small")
    figure.suptitle("Macro-F1 across coders (mean over seeds)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
