"""Several simulations' results.csv → one report: the tables and figures of docs/results.md.

The replication runs for days in pieces (configurations and seeds resumed or sharded into several
`--out` directories, older ones kept only as CSV), so its report is merged from their rows:

    python bench/merge_results.py OUT a/results.csv b/results.csv ... \
        --configs tfidf-cviar,setfit-lr-cviar --paired setfit-lr-cviar:setfit-base-cviar

writes OUT/results.csv, OUT/summary.md and the figures (backend/research/report.py), and prints the
summary. A (configuration, seed) found in several files is taken from the last. `--paired A:B` adds
A − B per round, paired by seed, over the seeds both ran.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.research.report import markdown_table, write_report

PROTOCOL = (
    "Merged from {files}. Each row's protocol is its simulation's (see docs/results.md); "
    "seeds per configuration: {seeds}."
)


def merged(files: list[Path], configs: list[str] | None) -> pd.DataFrame:
    """The rows of every file, the last file's run of a (configuration, seed) winning."""
    frames = [pd.read_csv(path).assign(_file=i) for i, path in enumerate(files)]
    frame = pd.concat(frames, ignore_index=True)
    last = frame.groupby(["config", "seed"])["_file"].transform("max")
    frame = frame[frame["_file"] == last].drop(columns="_file")
    if configs:
        missing = sorted(set(configs) - set(frame["config"]))
        if missing:
            raise SystemExit(f"--configs: {', '.join(missing)} in none of the files")
        frame = frame[frame["config"].isin(configs)]
        frame = frame.assign(_order=frame["config"].map(configs.index)).sort_values(
            ["_order", "seed", "round"]
        )
        frame = frame.drop(columns="_order")
    return frame.reset_index(drop=True)


def paired_table(frame: pd.DataFrame, first: str, second: str) -> str:
    """Markdown: first − second macro-F1 per labeled count, mean ± sd over the seeds both ran."""
    a = frame[frame.config == first].set_index(["seed", "n_labeled"])["macro_f1"]
    b = frame[frame.config == second].set_index(["seed", "n_labeled"])["macro_f1"]
    difference = (a - b).dropna()
    if difference.empty:
        raise SystemExit(f"--paired {first}:{second}: no seed ran both")
    by_round = difference.groupby(level="n_labeled").agg(["mean", "std", "count"])
    ahead = (difference > 1e-9).groupby(level="n_labeled").sum()  # equal scores are not ahead
    seeds = sorted(difference.index.get_level_values("seed").unique())
    spread = [
        f"{row['mean']:+.3f}" + (f" ± {row['std']:.3f}" if row["count"] > 1 else "")
        for _, row in by_round.iterrows()
    ]
    counts = [f"{ahead[n]} of {int(row['count'])}" for n, row in by_round.iterrows()]
    title = f"### {first} − {second}, paired by seed (seeds {', '.join(map(str, seeds))})"
    rows = [["macro-F1 difference, mean ± sd", *spread], [f"seeds where {first} is ahead", *counts]]
    return title + "\n\n" + markdown_table(["", *map(str, by_round.index)], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--configs", help="only these configurations, in this order (comma-separated)")
    parser.add_argument("--paired", action="append", default=[], metavar="A:B")
    args = parser.parse_args()
    configs = args.configs.split(",") if args.configs else None
    frame = merged(args.files, configs)
    codes = [column[3:] for column in frame.columns if column.startswith("f1_")]
    seeds = "; ".join(
        f"{name} {','.join(map(str, sorted(group['seed'].unique())))}"
        for name, group in frame.groupby("config", sort=False)
    )
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "results.csv", index=False)
    named = ", ".join(f"`{path.parent.name}/{path.name}`" for path in args.files)  # no local paths
    protocol = PROTOCOL.format(files=named, seeds=seeds)
    write_report(args.out, frame.to_dict("records"), codes, protocol)
    for pair in args.paired:
        if pair.count(":") != 1 or not all(pair.split(":")):
            parser.error(f"--paired {pair!r}: expected A:B, two configuration names")
    paired = [paired_table(frame, *pair.split(":")) for pair in args.paired]
    summary = args.out / "summary.md"
    if paired:
        summary.write_text(
            summary.read_text(encoding="utf-8") + "\n" + "\n\n".join(paired) + "\n", encoding="utf-8"
        )
    print(summary.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
