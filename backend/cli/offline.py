"""`train` and `rank`: a model from a file of coded segments, and a ranked, pre-annotated pool."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from backend.cli.errors import UsageError, comma_list
from backend.cli.models import usable_model
from backend.config import Settings


def cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    from backend.domain.scheme import label_matrix
    from backend.learning.factories import ModelFactory
    from backend.research.corpus import ordered_codes, read_segments
    from backend.storage.versions import ModelStore

    segments = read_segments(args.data, require_codes=True)
    settings = usable_model(settings)
    blank = [segment["id"] for segment in segments if not segment["text"].strip()]
    if blank:
        raise UsageError(f"{len(blank)} segment(s) have an empty text: {', '.join(map(str, blank[:5]))}")
    codes = ordered_codes(segments, comma_list(args.codes))
    labels = label_matrix([segment["codes"] for segment in segments], codes)
    print(f"training {settings.model.model_kind} on {len(segments)} segments, codes: {', '.join(codes)}")
    started = time.perf_counter()
    factory = ModelFactory(settings.model.model_options())
    model = factory.train([s["text"] for s in segments], labels, codes, show_progress=True)
    seconds = time.perf_counter() - started
    store = ModelStore(settings.server.model_dir, settings.server.keep_versions)
    version = store.save(
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
    from backend.domain.scheme import code_lists, label_matrix
    from backend.learning.devices import resolved_device
    from backend.learning.strategies import rank
    from backend.research.corpus import read_segments
    from backend.storage.versions import ModelStore

    store = ModelStore(settings.server.model_dir, settings.server.keep_versions)
    try:
        version = store.get(args.project, args.version) if args.version else store.latest(args.project)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    if version is None:
        raise UsageError(
            f"project {args.project} has no model version in {settings.server.model_dir}; train first"
        )
    model = store.load(version, device=resolved_device(settings.model.device))
    pool = read_segments(args.data, require_codes=False)
    labeled = read_segments(args.labeled, require_codes=True) if args.labeled else []
    labels = label_matrix([s["codes"] for s in labeled], model.codes).reshape(-1, len(model.codes))
    proba = model.predict_proba([segment["text"] for segment in pool])
    strategy = args.strategy or settings.model.query_strategy
    options = replace(settings.model.strategy_options(), name=strategy)
    ranking = rank(options, proba, labels, thresholds=model.thresholds)
    predicted = code_lists(model.decide(proba), model.codes)
    records = [
        {
            "rank": place,
            "id": pool[i]["id"],
            "informativeness": round(float(ranking.informativeness[i]), 6),
            "prediction_score": round(float(ranking.scores[i]), 6),
            "codes": predicted[i],
            "proba": dict(zip(model.codes, (round(float(p), 4) for p in proba[i]), strict=True)),
        }
        for place, i in enumerate(ranking.order, start=1)
    ]
    for record in records[: args.top]:
        codes = ",".join(record["codes"]) or "-"
        print(f"{record['rank']:>4}  {record['id']}  {record['informativeness']:.4f}  {codes}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as output:
            output.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    print(f"ranked {len(pool)} segments with {strategy} using version {version.name}")
    return 0


def add_commands(commands) -> None:
    train = commands.add_parser("train", help="train a model version from coded segments (JSONL)")
    train.add_argument("--data", type=Path, required=True, help='JSONL lines {"text", "codes": [...]}')
    train.add_argument("--project", required=True, help="project name: versions go to MODEL_DIR/<project>/")
    train.add_argument("--codes", help="comma-separated codes in column order (default: those in the data)")
    train.set_defaults(handler=cmd_train)

    ranked = commands.add_parser(
        "rank", help="pre-annotate a pool (JSONL) and rank it, most informative first"
    )
    ranked.add_argument("--data", type=Path, required=True, help='JSONL lines {"text", "id"?}')
    ranked.add_argument(
        "--project", required=True, help="project name: its versions are in MODEL_DIR/<project>/"
    )
    ranked.add_argument("--version", help="model version (default: the newest)")
    ranked.add_argument("--labeled", type=Path, help="the coded segments (JSONL), used by cviar/lci/adaptive")
    ranked.add_argument("--strategy", help="override QUERY_STRATEGY")
    ranked.add_argument("--top", type=int, default=20, help="how many to print (default 20)")
    ranked.add_argument("--out", type=Path, help="write every segment's ranking and codes here (JSONL)")
    ranked.set_defaults(handler=cmd_rank)
