"""What a query strategy buys in a simulation: positives of each code among the segments labeled.

Macro-F1 on a 30-segment test set moves by a seed's noise; the positives a strategy brings into the
labeled set are counted without that noise. Reads a `simulate --out` directory (run.json's pool and
selections.jsonl) and prints, per configuration and labeled count, each code's labeled positives,
mean ± sd over seeds:

    python bench/labeled_positives.py OUT [--codes mental_health,health_unspecific]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.research.report import markdown_table


def positives(out: Path, codes: list[str] | None) -> pd.DataFrame:
    """One row per (config, seed, labeled count): the positives of each code labeled so far."""
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    codes = codes or run["codes"]
    coded = {key: set(chosen) for key, _coder, chosen, *_ in run["pool"]}
    coded |= {f"{key}@{coder}": set(chosen) for key, coder, chosen, *_ in run["pool"]}
    rows, labeled = [], {}
    for line in (out / "selections.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        pair = (record["config"], record["seed"])
        labeled[pair] = (labeled[pair] if record["round"] else []) + record["selected"]
        counts = {code: sum(code in coded[key] for key in labeled[pair]) for code in codes}
        rows.append({"config": pair[0], "seed": pair[1], "n_labeled": len(labeled[pair]), **counts})
    return pd.DataFrame(rows)


def table(frame: pd.DataFrame, code: str) -> str:
    """Markdown: configurations × labeled counts, the code's labeled positives (mean ± sd over seeds)."""
    stats = frame.groupby(["config", "n_labeled"], sort=False)[code].agg(["mean", "std"]).fillna(0)
    counts = sorted(frame["n_labeled"].unique())
    cell = "{0[mean]:.1f} ± {0[std]:.1f}".format
    configs = dict.fromkeys(frame["config"])
    body = [[config, *[cell(stats.loc[(config, n)]) for n in counts]] for config in configs]
    return markdown_table([code, *map(str, counts)], body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--codes", help="only these codes (comma-separated)")
    args = parser.parse_args()
    frame = positives(args.out, args.codes.split(",") if args.codes else None)
    codes = [column for column in frame.columns if column not in ("config", "seed", "n_labeled")]
    print("\n\n".join(table(frame, code) for code in codes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
