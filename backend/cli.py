"""The `coding-backend` command line.

Subcommands:
  serve    run the ML backend for Label Studio (gunicorn; --dev for Flask's server)
  demo     Label Studio + backend + a coding project on this machine, without Docker
  healthcheck  exit 0 when the local server answers /health (the container's HEALTHCHECK)
  config   show the effective configuration (validated; secrets never shown)
  train    train a model version from a JSONL file of coded segments
  rank     pre-annotate and rank a JSONL pool with a trained version (most informative first)
  agreement  inter-coder agreement of a Label Studio project (or a JSONL file), per code and overall
  simulate replay active learning on coded data for a grid of configurations (the study's protocol)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from backend.config import ConfigError, Settings, load_settings
from backend.logs import setup_logging
from backend.segments import read_segments
from backend.studio import StudioError

log = logging.getLogger("coding-backend")


class UsageError(Exception):
    """Bad input from the user: printed as one message, exit status 2."""


def ordered_codes(segments: Sequence[dict], given: str | None) -> list[str]:
    """The codes named by --codes, or those used in the data, sorted for a stable column order."""
    if given:
        return [code.strip() for code in given.split(",") if code.strip()]
    return sorted({code for segment in segments for code in segment["codes"]})


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from backend.app import create_app

    overrides = {
        k: v for k, v in {"port": args.port, "workers": args.workers, "threads": args.threads}.items() if v
    }
    settings = settings.model_copy(update=overrides)
    app = create_app(settings)
    auth = "on" if settings.basic_auth_user else "off"
    print(
        f"serving on http://{args.host}:{settings.port} (basic auth {auth}, models in {settings.model_dir})"
    )
    if args.dev:
        app.run(host=args.host, port=settings.port, threaded=True)
        return 0
    from gunicorn.app.base import BaseApplication

    class Gunicorn(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{args.host}:{settings.port}")
            self.cfg.set("workers", settings.workers)
            self.cfg.set("threads", settings.threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("timeout", 300)
            self.cfg.set("loglevel", settings.log_level.lower())
            self.cfg.set("accesslog", "-" if settings.log_level == "DEBUG" else None)

        def load(self):
            return create_app(settings)

    Gunicorn().run()
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from backend.demo import DEMO_SEGMENTS, run_demo

    data = args.data or DEMO_SEGMENTS
    if not data.is_file():
        raise UsageError(f"{data}: no such file")
    options = {"limit": args.limit, "port": args.port, "backend_port": args.backend_port}
    options |= {"data_dir": args.data_dir, "venv": args.venv, "exit_after_setup": args.exit_after_setup}
    return run_demo(data, **options)


def cmd_healthcheck(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 when the local server answers /health (with basic auth when it is on): for Docker."""
    import httpx

    auth = None
    if settings.basic_auth_user:
        auth = (settings.basic_auth_user, settings.basic_auth_pass.get_secret_value())
    url = f"http://127.0.0.1:{settings.port}/health"
    try:
        response = httpx.get(url, auth=auth, timeout=args.timeout)
    except httpx.HTTPError as exc:
        print(f"unhealthy: {url}: {type(exc).__name__}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"unhealthy: {url} answered HTTP {response.status_code}", file=sys.stderr)
        return 1
    print("healthy")
    return 0


def cmd_config(settings: Settings, _args: argparse.Namespace) -> int:
    for name, value in settings.public().items():
        print(f"{name.upper()}={'' if value is None else value}")
    for name in ("label_studio_api_key", "basic_auth_pass"):
        print(f"{name.upper()}={'(set)' if getattr(settings, name) else ''}")
    return 0


def cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    from backend.model import train_model
    from backend.scheme import label_matrix
    from backend.versions import ModelStore

    segments = read_segments(args.data, require_codes=True)
    blank = [segment["id"] for segment in segments if not segment["text"].strip()]
    if blank:
        raise UsageError(f"{len(blank)} segment(s) have an empty text: {', '.join(map(str, blank[:5]))}")
    codes = ordered_codes(segments, args.codes)
    labels = label_matrix([segment["codes"] for segment in segments], codes)
    print(f"training {settings.model_kind} on {len(segments)} segments, codes: {', '.join(codes)}")
    started = time.perf_counter()
    model = train_model([s["text"] for s in segments], labels, codes, settings, show_progress=True)
    seconds = time.perf_counter() - started
    version = ModelStore(settings.model_dir, settings.keep_versions).save(
        args.project,
        model,
        n_labeled=len(segments),
        training_seconds=seconds,
        config=settings.public(),
        extra={"label_counts": dict(zip(codes, labels.sum(axis=0).tolist(), strict=True))},
    )
    print(f"saved version {version.name} of project {args.project} to {version.path} ({seconds:.0f} s)")
    return 0


def cmd_rank(settings: Settings, args: argparse.Namespace) -> int:
    from backend.scheme import code_lists, label_matrix
    from backend.strategies import score_pool, to_prediction_scores
    from backend.versions import ModelStore

    store = ModelStore(settings.model_dir, settings.keep_versions)
    try:
        version = store.get(args.project, args.version) if args.version else store.latest(args.project)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    if version is None:
        raise UsageError(f"project {args.project} has no model version in {settings.model_dir}; train first")
    model = store.load(version, device=settings.resolved_device())
    pool = read_segments(args.data, require_codes=False)
    labeled = read_segments(args.labeled, require_codes=True) if args.labeled else []
    labels = label_matrix([s["codes"] for s in labeled], model.codes).reshape(-1, len(model.codes))
    proba = model.predict_proba([segment["text"] for segment in pool])
    strategy = args.strategy or settings.query_strategy
    scores = score_pool(strategy, proba, labels, thresholds=model.thresholds, seed=settings.seed)
    predicted = code_lists(model.decide(proba), model.codes)
    ranked = sorted(
        zip(pool, scores, to_prediction_scores(scores), predicted, proba, strict=True),
        key=lambda item: -item[1],
    )
    records = [
        {
            "rank": rank,
            "id": segment["id"],
            "informativeness": round(float(score), 6),
            "prediction_score": round(float(ls_score), 6),
            "codes": codes,
            "proba": dict(zip(model.codes, (round(float(p), 4) for p in row), strict=True)),
        }
        for rank, (segment, score, ls_score, codes, row) in enumerate(ranked, start=1)
    ]
    for record in records[: args.top]:
        codes = ",".join(record["codes"]) or "-"
        print(f"{record['rank']:>4}  {record['id']}  {record['informativeness']:.4f}  {codes}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as output:
            output.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    print(f"ranked {len(pool)} segments with {strategy} using version {version.name}")
    return 0


def cmd_agreement(settings: Settings, args: argparse.Namespace) -> int:
    from backend.agreement import agreement, agreement_table

    if bool(args.project) == bool(args.data):
        raise UsageError("give either --project ID (Label Studio) or --data FILE (JSONL)")
    codes, answers = project_answers(settings, args.project) if args.project else file_answers(args.data)
    if args.coders:
        wanted = {coder.strip().lower() for coder in args.coders.split(",") if coder.strip()}
        answers = {task: [a for a in given if a.coder in wanted] for task, given in answers.items()}
    result = agreement(answers, codes)
    print(json.dumps(result, indent=2) if args.json else agreement_table(result))
    if not result["tasks"]:
        print("no task was coded by two or more coders: nothing to compare", file=sys.stderr)
    return 0


def project_answers(settings: Settings, project: str) -> tuple[list[str], dict]:
    """Each coder's latest answer per annotated task of a Label Studio project."""
    from backend.annotations import coder_answers
    from backend.scheme import parse_label_config
    from backend.studio import StudioClient

    if not project.isdigit():
        raise UsageError(f"--project must be a Label Studio project id (a number), got {project!r}")
    key = settings.label_studio_api_key.get_secret_value() if settings.label_studio_api_key else ""
    studio = StudioClient(settings.label_studio_url, key)
    scheme = parse_label_config(studio.label_config(int(project)))
    emails = studio.user_emails()
    tasks = studio.tasks(int(project), annotated=True)
    return scheme.codes, {task.id: coder_answers(task, scheme, emails) for task in tasks}


def file_answers(path: Path) -> tuple[list[str], dict]:
    """Answers from JSONL lines {"id", "coder", "codes"}; a coder's later line for an id wins."""
    from backend.annotations import CoderAnswer

    segments = read_segments(path, require_codes=True)
    answers: dict = {}
    for number, segment in enumerate(segments, start=1):
        if not isinstance(segment.get("coder"), str) or str(segment["id"]).startswith("line-"):
            raise UsageError(f'{path}: segment {number} needs an "id" and a "coder" to compare coders')
        coder = segment["coder"].strip().lower()
        by_coder = answers.setdefault(segment["id"], {})
        by_coder[coder] = CoderAnswer(segment["id"], coder, frozenset(segment["codes"]), str(number))
    return ordered_codes(segments, None), {task: list(by.values()) for task, by in answers.items()}


def comma_list(text: str | None) -> list[str] | None:
    """`a,b` → ['a', 'b']; None stays None."""
    return None if text is None else [item.strip() for item in text.split(",") if item.strip()]


def seed_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(seed) for seed in comma_list(text) or [])
    except ValueError:
        raise UsageError(
            f"--seeds {text!r}: expected whole numbers separated by commas, like 1,2,3"
        ) from None


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from backend import simulate
    from backend.grid import read_grid, single_config
    from backend.report import write_report
    from backend.scheme import parse_label_config
    from backend.tracking import tracking_uri

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
    corpus = simulate.load_corpus(
        args.data,
        args.test,
        scheme=scheme,
        codes=comma_list(args.codes),
        train_coders=comma_list(args.train_coders),
        test_coders=comma_list(args.test_coders),
        test_fraction=args.test_fraction,
        split_seed=args.split_seed,
    )
    protocol = simulate.Protocol(args.initial, args.batch, args.rounds, seed_list(args.seeds))
    print(
        f"simulating {len(configs)} configuration(s) x {len(protocol.seeds)} seed(s): training pool "
        f"{len(corpus.pool)}, test set {len(corpus.test)}, codes {', '.join(corpus.codes)}"
    )
    try:
        rows = simulate.run_simulation(
            configs,
            protocol,
            corpus,
            args.out,
            tracking_uri=tracking_uri(settings, args.out),
            experiment=args.experiment,
        )
    except KeyboardInterrupt:
        print(
            f"interrupted: finished runs are kept in {args.out}; run the same command to resume",
            file=sys.stderr,
        )
        return 130
    write_report(args.out, rows, corpus.codes, simulate.protocol_text(protocol, corpus, _data_text(args)))
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coding-backend",
        description="Active learning for qualitative interview coding in Label Studio.",
        epilog="Settings come from environment variables (see `coding-backend config`).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", help="run the ML backend for Label Studio")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port (default: PORT or 9090)")
    serve.add_argument("--workers", type=int, help="gunicorn worker processes (default: WORKERS or 1)")
    serve.add_argument("--threads", type=int, help="threads per worker (default: THREADS or 4)")
    serve.add_argument("--dev", action="store_true", help="run Flask's development server instead")
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser("demo", help="Label Studio + backend + a coding project on this machine")
    demo.add_argument("--data", type=Path, help="segments (JSONL with text, question?) (default: demo/)")
    demo.add_argument("--limit", type=int, help="import at most this many segments")
    demo.add_argument("--port", type=int, help="Label Studio's port (default: a free one)")
    demo.add_argument("--backend-port", type=int, help="the backend's port (default: a free one)")
    demo.add_argument("--data-dir", type=Path, help="keep Label Studio's data and the models here")
    demo.add_argument("--venv", type=Path, help="Label Studio's virtualenv (default: LABEL_STUDIO_VENV)")
    demo.add_argument("--exit-after-setup", action="store_true", help="stop once everything is set up")
    demo.set_defaults(handler=cmd_demo)

    health = commands.add_parser("healthcheck", help="exit 0 when the local server answers /health")
    health.add_argument("--timeout", type=float, default=5.0)
    health.set_defaults(handler=cmd_healthcheck)

    show = commands.add_parser("config", help="show the effective configuration and exit")
    show.set_defaults(handler=cmd_config)

    train = commands.add_parser("train", help="train a model version from coded segments (JSONL)")
    train.add_argument("--data", type=Path, required=True, help='JSONL lines {"text", "codes": [...]}')
    train.add_argument("--project", required=True, help="project name: versions go to MODEL_DIR/<project>/")
    train.add_argument("--codes", help="comma-separated codes in column order (default: those in the data)")
    train.set_defaults(handler=cmd_train)

    rank = commands.add_parser("rank", help="pre-annotate a pool (JSONL) and rank it, most informative first")
    rank.add_argument("--data", type=Path, required=True, help='JSONL lines {"text", "id"?}')
    rank.add_argument("--project", required=True)
    rank.add_argument("--version", help="model version (default: the newest)")
    rank.add_argument("--labeled", type=Path, help="the coded segments (JSONL), used by cviar/lci/adaptive")
    rank.add_argument("--strategy", help="override QUERY_STRATEGY")
    rank.add_argument("--top", type=int, default=20, help="how many to print (default 20)")
    rank.add_argument("--out", type=Path, help="write every segment's ranking and codes here (JSONL)")
    rank.set_defaults(handler=cmd_rank)

    agree = commands.add_parser("agreement", help="inter-coder agreement per code and overall")
    agree.add_argument("--project", help="Label Studio project id (uses LABEL_STUDIO_URL / _API_KEY)")
    agree.add_argument("--data", type=Path, help='or JSONL lines {"id", "coder", "codes": [...]}')
    agree.add_argument("--coders", help="only these coders (comma-separated emails)")
    agree.add_argument("--json", action="store_true", help="print the figures as JSON")
    agree.set_defaults(handler=cmd_agreement)
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(os.environ.get("LOG_LEVEL") or "INFO")
    try:
        settings = load_settings()
        return args.handler(settings, args)
    except (ConfigError, UsageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
