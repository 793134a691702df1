"""`simulate`: replay active learning on coded data for a grid of configurations (the study's protocol)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from backend.cli.errors import UsageError, comma_list, seed_list
from backend.cli.models import usable_model
from backend.cli.simulate_report import add_validation_options, report, targets, validation_size
from backend.config import Settings

if TYPE_CHECKING:
    from backend.research.shards import Shard


# The study's protocol by default; the shipped example's smaller one fits its 80 segments (56 in the pool).
PROTOCOL_DEFAULTS = {"initial": 20, "batch": 25, "rounds": 5, "seeds": "1,2,3"}
EXAMPLE_DEFAULTS = {"initial": 10, "batch": 10, "rounds": 3, "seeds": "1", "out": Path("simulate-example")}
EXAMPLE_CODER = "coder-a"


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    if args.report:
        return cmd_report(args)
    if args.example:
        return cmd_example(settings, args)
    for name, default in PROTOCOL_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.data is None or args.out is None:
        raise UsageError(
            "--data and --out are required (or --report OUT to merge finished shards; --example tries "
            "the shipped sample)"
        )
    check_inputs(args)
    targets(args)
    if not args.grid and args.model is None and args.kind != "tfidf":
        settings = usable_model(settings)  # like serve and demo: the bundled test model, said so
    from backend.domain.scheme import parse_label_config
    from backend.research import simulate
    from backend.research.corpus import load_corpus
    from backend.research.grid import read_grid, single_config
    from backend.research.protocol import Protocol, protocol_text
    from backend.research.shards import WHOLE_GRID, parse_shard, slurm_shard

    shard = parse_shard(args.shard) if args.shard else slurm_shard(os.environ) or WHOLE_GRID
    single = (args.kind, args.model, args.head, args.strategy)
    if args.grid and any(option is not None for option in single):
        raise UsageError("--grid excludes --kind/--model/--head/--strategy: put those settings in the grid")
    if args.configs and not args.grid:
        raise UsageError("--configs selects configurations of a --grid")
    if args.grid:
        configs = read_grid(args.grid, settings, comma_list(args.configs))
    else:
        configs = [single_config(settings, *single)]
    check_models(configs)
    scheme = None
    if args.label_config:
        scheme = parse_label_config(args.label_config.read_text(encoding="utf-8"), settings.loop.none_choices)
    if args.queue is not None:  # the grid and its models checked here, not in N failed shards
        return cmd_enqueue(settings, args)
    if args.cross_coders:
        return cmd_cross_coders(args, configs, scheme)
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
    validation = validation_size(args.validation, len(corpus.pool))
    protocol = Protocol(
        args.initial, args.batch, args.rounds, seed_list(args.seeds), args.initial_set, validation
    )
    description = protocol_text(protocol, corpus, _data_text(args))
    initial = None
    if args.initial_set == "codebook":
        if scheme is None:
            raise UsageError(
                "--initial-set codebook reads the codes' definitions (hints) from --label-config"
            )
        model = usable_model(settings).model
        print(f"choosing the initial set by the codebook, with {Path(model.model_name).name}'s base body")
        initial = simulate.codebook_initial_set(corpus, scheme.codebook(), model, args.initial)
    print(
        f"simulating {len(configs)} configuration(s) x {len(protocol.seeds)} seed(s)"
        + ("" if shard.whole else f", shard {shard}{_from_slurm(args)}: every {shard.count}th run")
        + f": training pool {len(corpus.pool)}, test set {len(corpus.test)}, codes {', '.join(corpus.codes)}"
    )
    try:
        with CtrlC() as ctrl_c:
            rows = simulate.run_simulation(
                configs,
                protocol,
                corpus,
                args.out,
                tracking_uri=_tracking_uri(settings, args.out, shard),
                experiment=args.experiment,
                description=description,
                shard=shard,
                interrupted=lambda: ctrl_c.pressed,
                initial=initial,
            )
    except KeyboardInterrupt:
        print(
            f"interrupted: finished runs are kept in {args.out}; run the same command to resume",
            file=sys.stderr,
        )
        return 130
    if not shard.whole:
        runs = len(rows) // (protocol.rounds + 1)
        print(f"shard {shard} finished {runs} run(s) in {args.out}; once every shard has finished,")
        print(f"merge them: coding-backend simulate --report {args.out}")
        return 0
    report(args, rows, corpus.codes, description)
    return 0


def cmd_example(settings: Settings, args: argparse.Namespace) -> int:
    """`--example`: the shipped made-up sample and the study's form, with a protocol that fits it;
    coder-a's codes unless coders are chosen (the sample codes 16 segments twice)."""
    from backend.resources import example_inputs

    if args.data or args.label_config or args.test:
        raise UsageError(
            "--example brings its own segments and form: leave out --data, --test and --label-config"
        )
    for name, default in EXAMPLE_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    if not args.cross_coders:
        args.train_coders = args.train_coders or EXAMPLE_CODER
        args.test_coders = args.test_coders or EXAMPLE_CODER
    with example_inputs() as (data, form):
        args.data, args.label_config, args.example = data, form, False
        print(
            f"the shipped example: made-up segments ({data.name}) and the study's form; results in {args.out}"
        )
        return cmd_simulate(settings, args)


def check_inputs(args: argparse.Namespace) -> None:
    """The files a user named, in the order they read them, before any model is loaded."""
    for option in ("data", "test", "label_config", "grid"):
        path = getattr(args, option)
        if path is not None and not path.is_file():
            raise UsageError(f"--{option.replace('_', '-')} {path}: no such file")


def check_models(configs: list) -> None:
    """Refuse a configuration whose model cannot be loaded before anything runs, naming it: a model a
    grid or --model names is never replaced (MODEL_NAME itself falls back as in every command, and
    the results name the model used)."""
    from backend.cli.models import why_unloadable

    for name in dict.fromkeys(c.settings.model_name for c in configs if c.kind != "tfidf"):
        problem = why_unloadable(name)
        if problem:
            used_by = ", ".join(c.name for c in configs if c.settings.model_name == name)
            raise UsageError(f"MODEL_NAME={name!r} ({used_by}) cannot be loaded: {problem}")


def cmd_cross_coders(args: argparse.Namespace, configs: list, scheme) -> int:
    """`--cross-coders`: a model per coder, tested on every coder's held-out segments (see
    research/cross_coders.py), beside the coders' own agreement."""
    from backend.research import cross_coders
    from backend.research.corpus import choose_codes, keep_codes, read_examples
    from backend.research.errors import DataError
    from backend.research.shards import slurm_shard
    from backend.research.simulate import quiet_training_output, train

    clashing = [
        name for name in ("test", "train_coders", "test_coders", "shard", "validation") if getattr(args, name)
    ]
    clashing += [
        name
        for name, default in (("split_seed", 0), ("initial_set", "random"))
        if getattr(args, name) != default
    ]
    if clashing:
        options = ", ".join("--" + name.replace("_", "-") for name in clashing)
        raise UsageError(
            f"--cross-coders splits one file by segment with each seed and uses every coder: drop {options}"
        )
    if slurm_shard(os.environ):
        raise UsageError(
            "--cross-coders runs as one job: not in a SLURM job array (SLURM_ARRAY_TASK_ID is set)"
        )
    if not 0 < args.test_fraction < 1:
        raise DataError(f"--test-fraction must be between 0 and 1, got {args.test_fraction}")
    examples = read_examples(args.data, scheme)
    codes = choose_codes(comma_list(args.codes), scheme, examples)
    examples = keep_codes(examples, codes)
    seeds = seed_list(args.seeds)
    if not seeds:
        raise UsageError("--seeds: give at least one seed")
    coders = cross_coders.coders_of(examples)
    print(
        f"cross-coders: {len(configs)} configuration(s) x {len(seeds)} seed(s) x {len(coders)} coders "
        f"({len({e.id for e in examples})} segments, codes {', '.join(codes)})"
    )
    quiet_training_output()
    transfer = cross_coders.transfer_rows(configs, seeds, examples, codes, args.test_fraction, train)
    pairs = cross_coders.coder_pair_rows(examples, codes)
    about = (
        f"Data: `{args.data}`; coders {', '.join(coders)}. Each seed splits the segments by id "
        f"({args.test_fraction:.0%} held out, stratified by rarest code) and trains one model per coder "
        f"on that coder's codes of the training side; seeds {', '.join(map(str, seeds))}."
    )
    cross_coders.write_cross_coders(args.out, transfer, pairs, codes, about)
    print(f"wrote {', '.join(f'{args.out}/{name}' for name in cross_coders.FILES)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """`--report OUT`: the tables and figures of every shard's finished runs, as one run would write them."""
    from backend.research.results import merge_runs, result_rows, write_tables

    targets(args)
    pairs, done, codes, description = merge_runs(args.report)
    write_tables(args.report, pairs, done, codes)
    args.out = args.report
    print(f"merged {len(pairs)} runs")
    report(args, result_rows(pairs, done), codes, description)
    return 0


def _tracking_uri(settings: Settings, out: Path, shard: Shard) -> str:
    """MLFLOW_TRACKING_URI, or a local SQLite store in OUT: one per shard, since shards may run on
    several hosts at once and SQLite's locks do not hold across a network filesystem."""
    from backend.tracking.runs import tracking_uri

    store = "mlflow.db" if shard.whole else f"mlflow-shard-{shard.index}-of-{shard.count}.db"
    return tracking_uri(settings.server, out, store)


def _from_slurm(args: argparse.Namespace) -> str:
    """Say so when the shard came from a SLURM array's environment, not from --shard."""
    return "" if args.shard else " (from SLURM_ARRAY_TASK_ID; pass --shard I/N to choose)"


def cmd_enqueue(settings: Settings, args: argparse.Namespace) -> int:
    """`--queue N`: the grid as N shards on the RQ queue `grid`, for `coding-backend worker`s."""
    from backend.cli.grid_jobs import enqueue_shards
    from backend.queue.redis_queue import connect

    if not settings.server.redis_url:
        raise UsageError("--queue puts the grid's shards in Redis: set REDIS_URL (or use --shard I/N)")
    if args.queue < 1:
        raise UsageError(f"--queue {args.queue}: expected the number of shards, 1 or more")
    if args.shard or args.cross_coders:
        raise UsageError("--queue splits the whole grid itself: leave out --shard and --cross-coders")
    argv = shard_argv(args)
    ids = enqueue_shards(connect(settings.server.redis_url.get_secret_value()), argv, args.queue)
    print(f"put {len(ids)} shard(s) of the grid on the queue 'grid' ({args.out.resolve()})")
    print("run them on hosts that see --data and --out: coding-backend worker --queues grid")
    print(f"then merge them: coding-backend simulate --report {args.out.resolve()}")
    return 0


def shard_argv(args: argparse.Namespace) -> list[str]:
    """The options of this `simulate` as a worker elsewhere runs them: paths absolute, no --queue
    (settings not in the options or the grid are the worker's own environment's, like DEVICE)."""
    argv: list[str] = []
    for action in args.command_parser._actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings or action.dest in ("queue", "help") or value == action.default:
            continue
        if isinstance(value, bool):
            argv.append(action.option_strings[-1])
        else:
            argv.append(
                f"{action.option_strings[-1]}={value.resolve() if isinstance(value, Path) else value}"
            )
    return argv


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
    sim.add_argument("--data", type=Path, help="coded segments: JSONL or a Label Studio JSON export")
    sim.add_argument(
        "--test", type=Path, help="test set in the same formats (default: a held-out split of --data)"
    )
    sim.add_argument(
        "--label-config", type=Path, help="the project's label config (XML), for Label Studio exports"
    )
    sim.add_argument("--codes", help="comma-separated codes to learn, in column order (others are dropped)")
    sim.add_argument("--grid", type=Path, help="YAML list of configurations: {name, kind?, <setting>: value}")
    sim.add_argument("--configs", help="run only these configurations of the grid (comma-separated names)")
    sim.add_argument(
        "--kind", help="without --grid: setfit, transformer, tfidf or tfidf-embeddings (default: MODEL_KIND)"
    )
    sim.add_argument("--model", help="without --grid: MODEL_NAME")
    sim.add_argument("--head", help="without --grid: CLASSIFIER_HEAD (logistic, differentiable, chain)")
    sim.add_argument("--strategy", help="without --grid: QUERY_STRATEGY")
    sim.add_argument(
        "--example",
        action="store_true",
        help="try it: the shipped made-up sample (80 segments coded for the study's form) with a small "
        f"protocol, results in {EXAMPLE_DEFAULTS['out']} (other options still apply)",
    )
    sim.add_argument(
        "--initial", type=int, help="random segments labeled at the start (default 20; --example: 10)"
    )
    sim.add_argument(
        "--initial-set",
        choices=("random", "codebook"),
        default="random",
        help="how the initial segments are chosen: at random per seed (default), or the codebook cold "
        "start: most like each code's definition (the <Choice> hints of --label-config)",
    )
    sim.add_argument(
        "--batch", type=int, help="segments the strategy adds per round (default 25; --example: 10)"
    )
    sim.add_argument(
        "--rounds", type=int, help="query rounds after the initial one (default 5; --example: 3)"
    )
    sim.add_argument("--seeds", help="comma-separated seeds, one run each (default 1,2,3; --example: 1)")
    add_validation_options(sim)
    sim.add_argument("--train-coders", help="train only on codes by these coders (comma-separated)")
    sim.add_argument("--test-coders", help="test only on codes by these coders (comma-separated)")
    sim.add_argument("--test-fraction", type=float, default=0.3, help="held out without --test (default 0.3)")
    sim.add_argument("--split-seed", type=int, default=0, help="seed of the held-out split (default 0)")
    sim.add_argument("--experiment", default="coding-backend-simulate", help="MLflow experiment name")
    sim.add_argument("--out", type=Path, help="results go here; run again to resume")
    sim.add_argument(
        "--shard",
        help="I/N: run only every N-th (configuration, seed) pair from the I-th on, into a shared --out "
        "(default: from SLURM_ARRAY_TASK_ID and _COUNT in a SLURM job array, else the whole grid)",
    )
    sim.add_argument(
        "--cross-coders",
        action="store_true",
        help="coder by coder: train on each coder's codes, test on every coder's held-out segments, "
        "beside the coders' agreement (needs two or more coders in --data)",
    )
    sim.add_argument(
        "--report",
        type=Path,
        metavar="OUT",
        help="run nothing: merge the finished runs of every shard in OUT into results.csv, summary.md, "
        "selections.jsonl and figures",
    )
    sim.add_argument(
        "--queue",
        type=int,
        metavar="N",
        help="with REDIS_URL: run nothing here, put the grid as N shards on the queue 'grid' for "
        "`coding-backend worker --queues grid` on hosts that see --data and --out",
    )
    sim.set_defaults(handler=cmd_simulate, command_parser=sim)


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
