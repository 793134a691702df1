"""`simulate`: replay active learning on coded data for a grid of configurations (the study's protocol)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from backend.cli.errors import UsageError, comma_list, seed_list
from backend.config import Settings


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from backend.domain.scheme import parse_label_config
    from backend.research import simulate
    from backend.research.corpus import load_corpus
    from backend.research.grid import read_grid, single_config
    from backend.research.protocol import Protocol, protocol_text
    from backend.research.report import write_report
    from backend.tracking.runs import tracking_uri

    single = (args.kind, args.model, args.head, args.strategy)
    if args.grid and any(option is not None for option in single):
        raise UsageError("--grid excludes --kind/--model/--head/--strategy: put those settings in the grid")
    if args.configs and not args.grid:
        raise UsageError("--configs selects configurations of a --grid")
    if args.grid:
        configs = read_grid(args.grid, settings, comma_list(args.configs))
    else:
        configs = [single_config(settings, *single)]
    scheme = None
    if args.label_config:
        if not args.label_config.is_file():
            raise UsageError(f"{args.label_config}: no such file")
        scheme = parse_label_config(args.label_config.read_text(encoding="utf-8"))
    corpus = load_corpus(
        args.data,
        args.test,
        scheme=scheme,
        codes=comma_list(args.codes),
        train_coders=comma_list(args.train_coders),
        test_coders=comma_list(args.test_coders),
        test_fraction=args.test_fraction,
        split_seed=args.split_seed,
    )
    protocol = Protocol(args.initial, args.batch, args.rounds, seed_list(args.seeds))
    print(
        f"simulating {len(configs)} configuration(s) x {len(protocol.seeds)} seed(s): training pool "
        f"{len(corpus.pool)}, test set {len(corpus.test)}, codes {', '.join(corpus.codes)}"
    )
    try:
        with CtrlC() as ctrl_c:
            rows = simulate.run_simulation(
                configs,
                protocol,
                corpus,
                args.out,
                tracking_uri=tracking_uri(settings.server, args.out),
                experiment=args.experiment,
                interrupted=lambda: ctrl_c.pressed,
            )
    except KeyboardInterrupt:
        print(
            f"interrupted: finished runs are kept in {args.out}; run the same command to resume",
            file=sys.stderr,
        )
        return 130
    write_report(args.out, rows, corpus.codes, protocol_text(protocol, corpus, _data_text(args)))
    print(f"wrote {args.out}/results.csv, summary.md, selections.jsonl and figures")
    return 0


def _data_text(args: argparse.Namespace) -> str:
    """Where the pool and test set came from, for summary.md."""
    if args.test:
        source = f"training pool from `{args.data}`, test set `{args.test}`"
    else:
        source = (
            f"`{args.data}` split by segment: {args.test_fraction:.0%} held out for testing "
            f"(stratified by each segment's rarest code, split seed {args.split_seed})"
        )
    for option, coders in (("training", args.train_coders), ("test", args.test_coders)):
        if coders:
            source += f"; {option} codes by {coders} only"
    return source


def add_commands(commands) -> None:
    sim = commands.add_parser(
        "simulate",
        help="replay active learning on coded data for a grid of configurations (the study's protocol)",
    )
    sim.add_argument(
        "--data", type=Path, required=True, help="coded segments: JSONL or a Label Studio JSON export"
    )
    sim.add_argument(
        "--test", type=Path, help="test set in the same formats (default: a held-out split of --data)"
    )
    sim.add_argument(
        "--label-config", type=Path, help="the project's label config (XML), for Label Studio exports"
    )
    sim.add_argument("--codes", help="comma-separated codes to learn, in column order (others are dropped)")
    sim.add_argument("--grid", type=Path, help="YAML list of configurations: {name, kind?, <setting>: value}")
    sim.add_argument("--configs", help="run only these configurations of the grid (comma-separated names)")
    sim.add_argument("--kind", help="without --grid: setfit, transformer or tfidf (default: MODEL_KIND)")
    sim.add_argument("--model", help="without --grid: MODEL_NAME")
    sim.add_argument("--head", help="without --grid: CLASSIFIER_HEAD (logistic, differentiable)")
    sim.add_argument("--strategy", help="without --grid: QUERY_STRATEGY")
    sim.add_argument(
        "--initial", type=int, default=20, help="random segments labeled at the start (default 20)"
    )
    sim.add_argument(
        "--batch", type=int, default=25, help="segments the strategy adds per round (default 25)"
    )
    sim.add_argument("--rounds", type=int, default=5, help="query rounds after the initial one (default 5)")
    sim.add_argument("--seeds", default="1,2,3", help="comma-separated seeds, one run each (default 1,2,3)")
    sim.add_argument("--train-coders", help="train only on codes by these coders (comma-separated)")
    sim.add_argument("--test-coders", help="test only on codes by these coders (comma-separated)")
    sim.add_argument("--test-fraction", type=float, default=0.3, help="held out without --test (default 0.3)")
    sim.add_argument("--split-seed", type=int, default=0, help="seed of the held-out split (default 0)")
    sim.add_argument("--experiment", default="coding-backend-simulate", help="MLflow experiment name")
    sim.add_argument("--out", type=Path, required=True, help="results go here; run again to resume")
    sim.set_defaults(handler=cmd_simulate)


class CtrlC:
    """Ctrl-C that no library can lose: KeyboardInterrupt where the program is, and a flag asked
    between runs (one pressed while MLflow set up its store was swallowed, and the grid went on)."""

    def __init__(self) -> None:
        self.pressed = False

    def __enter__(self) -> CtrlC:
        self._before = signal.signal(signal.SIGINT, self._press)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._before)

    def _press(self, signum: int, frame: object) -> None:
        self.pressed = True
        raise KeyboardInterrupt
