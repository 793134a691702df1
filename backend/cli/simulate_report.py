"""`simulate`'s report and its validation sample: the options, and what is written and printed at
the end of a run or of `--report` (research/report.py, research/validation_report.py)."""

from __future__ import annotations

import argparse

from backend.cli.errors import UsageError


def report(args: argparse.Namespace, rows: list[dict], codes, description: str) -> None:
    """summary.md and the figures; with a validation sample also validation.csv and its figure, and
    its coverage and autocode tables printed."""
    from backend.research import validation_report
    from backend.research.report import write_report

    more = validation_report.sections(rows, codes, targets(args)) if validation_report.validated(rows) else []
    write_report(args.out, rows, codes, description, more)
    written = "results.csv, summary.md, selections.jsonl and figures"
    if more:
        validation_report.write_validation(args.out, rows, codes)
        print("\n\n".join(more))
        written = "results.csv, validation.csv, summary.md, selections.jsonl and figures"
    print(f"wrote {args.out}/{written}")


def validation_size(text: str | None, pool: int) -> int:
    """--validation: a number of pool segments, or a fraction of the pool (0 < f < 1)."""
    if text is None:
        return 0
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value >= 1 and value.is_integer():
        return int(value)
    if 0 < value < 1:
        return max(1, round(value * pool))
    raise UsageError(
        f"--validation {text!r}: expected a number of segments (e.g. 30) or a fraction of the pool (e.g. 0.3)"
    )


def targets(args: argparse.Namespace) -> tuple[float, float]:
    """The lead's autocode targets, each in (0, 1] as `autocode` takes them."""
    for name in ("min_precision", "min_recall"):
        value = getattr(args, name)
        if not 0 < value <= 1:
            raise UsageError(f"--{name.replace('_', '-')} {value}: a target must lie in (0, 1], e.g. 0.9")
    return args.min_precision, args.min_recall


def add_validation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--validation",
        metavar="SIZE",
        help="hold a blind validation sample out of training and of the query: SIZE pool segments, or a "
        "fraction of the pool (0.3), drawn per seed after the initial set; each round reports the "
        "estimates on it beside the truth, and how often the intervals cover it",
    )
    parser.add_argument(
        "--min-precision",
        type=float,
        default=0.9,
        help="with --validation: the autocode target for a code's precision lower bound (default 0.9)",
    )
    parser.add_argument(
        "--min-recall",
        type=float,
        default=0.8,
        help="with --validation: the autocode target for a code's recall lower bound (default 0.8)",
    )
