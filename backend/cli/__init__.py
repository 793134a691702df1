"""The `coding-backend` command line.

Subcommands:
  serve        run the ML backend for Label Studio (gunicorn; --dev for Flask's server)
  worker       run rounds from Redis on this host (REDIS_URL; any number of hosts)
  demo         Label Studio + backend + a coding project on this machine, without Docker
  init         set up a coding project in a running Label Studio, connected to this backend
  healthcheck  exit 0 when the local server answers /health (the container's HEALTHCHECK)
  config       show the effective configuration (validated; secrets never shown)
  train        train a model version from a JSONL file of coded segments
  rank         pre-annotate and rank a JSONL pool with a trained version (most informative first)
  agreement    inter-coder agreement of a Label Studio project (or a JSONL file), per code and overall
  export       the coded corpus as CSV, JSON lines, Parquet or a REFI-QDA project (.qdpx)
  codebook     a project's codes as a REFI-QDA codebook (.qdc)
  validate     draw a blind validation sample of the uncoded segments (or release it into training)
  autocode     hand codes to the model where the validation sample shows it earned them (--undo, --status)
  bias         how often coders kept the model's suggestion unchanged, per coder and code
  simulate     replay active learning on coded data for a grid of configurations (the study's protocol)

Exit status: 0 when done, 2 for bad input or settings (one message naming the problem), 1 when
Label Studio refused or failed a call, 3 when `autocode` refused a code, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from backend.cli import agreement, bias, exports, offline, project, serving, simulate, validation
from backend.config import load_settings
from backend.config.logs import setup_logging
from backend.errors import BackendError
from backend.studio.client import StudioError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coding-backend",
        description="Active learning for qualitative interview coding in Label Studio.",
        epilog="Settings come from environment variables (see `coding-backend config`).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (serving, project, offline, agreement, validation, bias, exports, simulate):
        module.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(os.environ.get("LOG_LEVEL") or "INFO")
    try:
        return args.handler(load_settings(), args)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BackendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
