"""A simulated validation sample's report: validation.csv (every interval beside its truths),
the coverage of the intervals and what autocode would have handed over, as Markdown for
summary.md and the terminal, and validation.png.

Autocode is judged as the live backend judges it (learning/validation.py `verdict`: the lower
bounds of precision and recall against the lead's targets) on each round's estimates, and the
codes it hands over are checked against their true figures on the test set.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from backend.learning.validation import CONFIDENCE, CodeEstimate, verdict
from backend.research.report import line_styles, markdown_table, pyplot
from backend.research.validation import AGAINST, FIGURES, Coverage, coverage, long_rows
from backend.storage.atomic import write_atomically

FIGURE = "validation.png"
# (figure, truth it is compared with, what the row says)
COVERAGE_ROWS = (
    ("precision", "test", "precision vs. the test set"),
    ("recall", "test", "recall vs. the test set"),
    ("precision", "rest", "precision vs. the rest of the pool"),
    ("recall", "rest", "recall vs. the rest of the pool"),
    ("prevalence_ppi", "pool", "prevalence (PPI) vs. the pool"),
    ("prevalence_classical", "pool", "prevalence (sample alone) vs. the pool"),
)


def validated(rows: Sequence[dict]) -> bool:
    return any(row.get("validation") for row in rows)


def write_validation(out: Path, rows: Sequence[dict], codes: Sequence[str]) -> None:
    """validation.csv and validation.png in `out`."""
    records = pd.DataFrame(long_rows(rows))
    for column in ("n", "test_n", "rest_n"):  # counts, though other figures' rows leave them empty
        records[column] = records[column].astype("Int64")
    buffer = io.StringIO()
    records.to_csv(buffer, index=False, lineterminator="\n", float_format="%.4f")
    write_atomically(out / "validation.csv", buffer.getvalue())
    figure = validation_figure(records, codes)
    figure.savefig(out / FIGURE, dpi=110)
    pyplot().close(figure)


def sections(rows: Sequence[dict], codes: Sequence[str], targets: tuple[float, float]) -> list[str]:
    """The coverage and autocode sections of summary.md (also printed by `simulate`)."""
    records = long_rows(rows)
    nominal = f"{CONFIDENCE:.0%}"
    return [
        f"## The validation sample: how often the {nominal} intervals cover the truth",
        "Per configuration, over seeds × rounds × codes. *Expected* is the coverage a valid interval "
        "would reach against that truth: below the nominal share against the test set and the rest "
        "of the pool, whose figures are estimates with their own sampling error (exact binomial sums "
        "at the pooled share); the pool's prevalence is exact. The interval of a coverage treats the "
        "intervals as independent; rounds of a seed share one sample and codes share segments, so it "
        "is too narrow (the per-seed counts show the spread).",
        markdown_table(
            ["config", "figure vs. truth", "covered", "coverage (95 % interval)", "expected", "per seed"],
            [
                [config, *_coverage_cells(coverage(mine, f, a, label), mine, f, a)]
                for config, mine in _by_config(records).items()
                for f, a, label in COVERAGE_ROWS
            ],
        ),
        "Per code, against the test set (intervals that held the test figure, of those with both):",
        markdown_table(
            ["config", "code", "precision", "recall"],
            [
                [config, code, *(_count([r for r in mine if r["code"] == code], f, "test") for f in FIGURES)]
                for config, mine in _by_config(records).items()
                for code in codes
            ],
        ),
        "Per round (labeled segments), intervals that held the truth, of those with both: the rest of "
        "the pool shrinks as active learning takes from it the segments its model is least sure of.",
        markdown_table(
            ["config", "labeled", *(f"{f} vs. {a}" for a in AGAINST for f in FIGURES)],
            [
                [
                    config,
                    str(n),
                    *(
                        _count([r for r in mine if r["n_labeled"] == n], f, a)
                        for a in AGAINST
                        for f in FIGURES
                    ),
                ]
                for config, mine in _by_config(records).items()
                for n in sorted({r["n_labeled"] for r in mine})
            ],
        ),
        f"## Autocode at precision ≥ {targets[0]:.2f} and recall ≥ {targets[1]:.2f} (lower bounds)",
        "A code is handed over at a round when the lower bounds of its precision and recall on the "
        "sample reach the targets (the rule of `coding-backend autocode`); its true figures then are "
        "counted on the test set.",
        markdown_table(
            [
                "config",
                "code",
                "handed over",
                "first at (labeled, per seed)",
                "test precision then",
                "test recall then",
                "last round: lower bounds (P / R)",
            ],
            autocode_rows(rows, codes, targets),
        ),
        f"![{FIGURE}]({FIGURE})",
    ]


def _by_config(records: list[dict]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for record in records:
        found.setdefault(record["config"], []).append(record)
    return found


def _coverage_cells(found: Coverage, records: list[dict], figure: str, against: str) -> list[str]:
    share = found.share
    interval = "–" if share.estimate is None else f"{share.estimate:.2f} ({share.low:.2f}–{share.high:.2f})"
    expected = f"{found.expected:.2f}" if found.expected is not None else f"{CONFIDENCE:.2f} (exact truth)"
    seeds = sorted({r["seed"] for r in records})
    per_seed = ", ".join(_count([r for r in records if r["seed"] == s], figure, against) for s in seeds)
    return [found.label, f"{found.covered} of {found.intervals}", interval, expected, per_seed]


def _count(records: list[dict], figure: str, against: str) -> str:
    found = coverage(records, figure, against, "")
    return f"{found.covered}/{found.intervals}"


def autocode_rows(
    rows: Sequence[dict], codes: Sequence[str], targets: tuple[float, float]
) -> list[list[str]]:
    """Per configuration and code: in how many (seed, round)s autocode would have accepted it, the
    first round per seed, the true test figures where accepted, and the last round's lower bounds."""
    table = []
    for config in dict.fromkeys(row["config"] for row in rows):
        mine = [row for row in rows if row["config"] == config and row.get("validation")]
        last = max(row["round"] for row in mine)
        for code in codes:
            accepted = [row for row in mine if _accepts(row["validation"][code], targets)]
            first = {}
            for row in accepted:
                first.setdefault(row["seed"], row["n_labeled"])
            seeds = sorted({row["seed"] for row in mine})
            ends = [row["validation"][code]["estimate"] for row in mine if row["round"] == last]
            table.append(
                [
                    config,
                    code,
                    f"{len(accepted)} of {len(mine)}",
                    ", ".join(str(first.get(seed, "–")) for seed in seeds),
                    _shares([row["validation"][code]["test"]["precision"] for row in accepted]),
                    _shares([row["validation"][code]["test"]["recall"] for row in accepted]),
                    f"{_mean_low(ends, 'precision')} / {_mean_low(ends, 'recall')}",
                ]
            )
    return table


def _accepts(found: dict, targets: tuple[float, float]) -> bool:
    return verdict("", CodeEstimate.of(found["estimate"]), *targets).accepted


def _shares(counts: list[list[int]]) -> str:
    """Mean (min–max) of shares counted as [successes, n]; – when none."""
    shares = [k / n for k, n in counts if n]
    if not shares:
        return "–"
    return f"{np.mean(shares):.2f} ({min(shares):.2f}–{max(shares):.2f})"


def _mean_low(estimates: list[dict], figure: str) -> str:
    lows = [e[figure]["low"] for e in estimates if e[figure]["low"] is not None]
    return f"{np.mean(lows):.2f}" if lows else "–"


def validation_figure(records: pd.DataFrame, codes: Sequence[str]):
    """Per code (rows) and figure (precision, recall): each seed's interval on the sample per round,
    and the test set's figure (×)."""
    plt = pyplot()
    figure, axes = plt.subplots(
        len(codes), 2, figsize=(9, 2.2 * len(codes)), squeeze=False, sharex=True, sharey=True
    )
    styles = line_styles(list(dict.fromkeys(records["config"])))
    seeds = sorted(records["seed"].unique())
    labeled = np.unique(records["n_labeled"])
    step = (np.diff(labeled).min() if len(labeled) > 1 else 1) * 0.6 / len(seeds)  # seeds side by side
    for i, code in enumerate(codes):
        for j, name in enumerate(("precision", "recall")):
            ax = axes[i, j]
            for config, style in styles.items():
                for s, seed in enumerate(seeds):
                    mine = records[
                        (records.config == config) & (records.seed == seed) & (records.code == code)
                    ]
                    mine = mine[(mine.figure == name) & mine.estimate.notna()]
                    x = mine.n_labeled + (s - (len(seeds) - 1) / 2) * step
                    error = [mine.estimate - mine.low, mine.high - mine.estimate]
                    ax.errorbar(
                        x,
                        mine.estimate,
                        yerr=error,
                        fmt="o",
                        markersize=3,
                        color=style["color"],
                        label=config,
                    )
                    ax.plot(x, mine.test, "x", color="black", markersize=4)
            ax.set(title=f"{code}: {name}", ylim=(-0.02, 1.02), xticks=labeled)
            ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("labeled segments (seeds side by side)")
    figure.suptitle("Intervals on the validation sample (dots, bars) and the test set's figure (×)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    shown = dict(zip(labels, handles, strict=True))  # one entry per configuration, not per seed
    figure.legend(shown.values(), shown.keys(), loc="lower center", ncol=min(4, len(shown)), fontsize="small")
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    return figure
