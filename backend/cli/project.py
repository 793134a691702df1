"""`init`: set up a coding project in a running Label Studio, connected to this backend.

What the compose file's `init` service runs after `docker compose up`, and what a lead runs against
a Label Studio of their own. It can run again and again: the project, its segments and the
connection are reused (backend/studio/setup.py).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from backend.cli.errors import UsageError
from backend.config import Settings


def cmd_init(settings: Settings, args: argparse.Namespace) -> int:
    from backend.domain.scheme import parse_label_config, with_evidence_tag
    from backend.research.corpus import read_segments
    from backend.resources import label_config as shipped_config
    from backend.studio.client import StudioClient
    from backend.studio.setup import ProjectSetter, segment_tasks

    server = settings.server
    if args.codebook and args.label_config:
        raise UsageError("give either --codebook or --label-config: each makes the project's form")
    if missing := missing_settings(settings):
        raise UsageError("init needs what the environment does not say:\n  " + "\n  ".join(missing))
    auth = backend_auth(settings)
    if args.codebook:
        config = config_from_codebook(args.codebook)
    else:
        config = read_label_config(args.label_config) if args.label_config else shipped_config()
    scheme = parse_label_config(config, settings.loop.none_choices)
    if args.evidence:  # the study form's evidence variant, or a tag added to the given form
        config = (
            with_evidence_tag(config, scheme)
            if args.label_config or args.codebook
            else shipped_config("interview_coding_evidence")
        )
        scheme = parse_label_config(config, settings.loop.none_choices)
    segments = read_segments(Path(args.data), require_codes=False) if args.data else []
    blank = [str(row["id"]) for row in segments if not row["text"].strip()]
    if blank:
        raise UsageError(f"{args.data}: {len(blank)} segment(s) have an empty text: {', '.join(blank[:5])}")
    client = StudioClient(server.label_studio_url, server.api_key())
    wait_for_label_studio(client, args.wait)
    print(f"setting up {args.title!r} in Label Studio at {client.url} ...", flush=True)
    setup = ProjectSetter(client).set_up(
        args.title,
        config,
        segment_tasks(segments, scheme.text_field),
        server.backend_url,
        auth,
        text_field=scheme.text_field,
        webhook_timeout=args.webhook_timeout,
    )
    print(f"project {setup.project}: {'created' if setup.created else 'exists, reused'}")
    if segments:
        print(f"segments: {setup.imported} imported, {setup.already_there} already there")
    print(f"backend {server.backend_url}: {setup.connection.state}")
    if not setup.connection.webhook_authorized:
        print(
            f"error: the project's webhook to {server.backend_url}/webhook does not carry the backend's "
            f"basic auth after {args.webhook_timeout:.0f} s, so annotations would not train.\n"
            "fix: the backend adds it when Label Studio connects it: its BACKEND_URL must be exactly "
            f"{server.backend_url}, and it needs LABEL_STUDIO_API_KEY",
            flush=True,
        )
        return 1
    public = (args.public_url or client.url).rstrip("/")
    print(f"ready: {public}/projects/{setup.project}/data")
    return 0


def missing_settings(settings: Settings) -> list[str]:
    """Each variable `init` needs and the environment lacks, with what it is: all at once, so that a
    first run names everything to set."""
    server = settings.server
    missing = []
    if not server.label_studio_api_key:
        missing.append(
            f"LABEL_STUDIO_API_KEY: the API token of a user of the Label Studio at LABEL_STUDIO_URL "
            f"(now {settings.public()['label_studio_url']})"
        )
    if not server.backend_url:
        missing.append(
            "BACKEND_URL: the address Label Studio reaches the backend at (in compose: http://backend:9090)"
        )
    if not server.basic_auth_user and not server.allow_unauthenticated:
        missing.append(
            "BASIC_AUTH_USER and BASIC_AUTH_PASS: the backend's credentials (or ALLOW_UNAUTHENTICATED=true "
            "where nobody else can reach the backend)"
        )
    return missing


def backend_auth(settings: Settings) -> tuple[str, str] | None:
    """The backend's basic auth, which Label Studio is given; None where auth was waived."""
    server = settings.server
    if server.basic_auth_user and server.basic_auth_pass:
        return server.basic_auth_user, server.basic_auth_pass.get_secret_value()
    return None


def read_label_config(path: str) -> str:
    """A label config file, or a shipped one by name (interview_coding_evidence, ...)."""
    from backend.resources import LABEL_CONFIGS, label_config

    if path in LABEL_CONFIGS and not Path(path).exists():
        return label_config(path)
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"--label-config {path}: {exc.strerror} (or a shipped form: {', '.join(LABEL_CONFIGS)})"
        ) from None


def config_from_codebook(path: str) -> str:
    """The label config a REFI-QDA codebook makes; what it cannot carry is said, not dropped silently."""
    from backend.exports.codebook import label_config_from, read_codebook

    codes, notes = read_codebook(Path(path))
    config, more = label_config_from(codes)
    for note in [*notes, *more]:
        print(f"codebook {path}: {note}", flush=True)
    return config


def wait_for_label_studio(client, seconds: float) -> None:
    """Until Label Studio answers /health, for at most `seconds` (it takes half a minute to start)."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{client.url}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() >= deadline:
            raise UsageError(
                f"Label Studio does not answer at {client.url}/health: is LABEL_STUDIO_URL right, "
                "and is it running?"
            )
        time.sleep(1)


def add_commands(commands) -> None:
    init = commands.add_parser(
        "init",
        help="set up a coding project in Label Studio, connected to this backend (can run again)",
        description="Create (or reuse) a project, import segments it does not hold yet, connect the "
        "backend with basic auth and check that annotations reach it. Reads LABEL_STUDIO_URL, "
        "LABEL_STUDIO_API_KEY, BACKEND_URL, BASIC_AUTH_USER and BASIC_AUTH_PASS (or "
        "ALLOW_UNAUTHENTICATED=true).",
    )
    init.add_argument(
        "--title", default="Interview coding", help="the project's title (default: %(default)s)"
    )
    init.add_argument(
        "--label-config",
        help="label config XML file, or a shipped form by name: interview_coding (the default), "
        "interview_coding_evidence, generic_multilabel; empty: the default",
    )
    init.add_argument(
        "--codebook",
        help="make the form from a REFI-QDA codebook (.qdc, or a .qdpx project's codebook) written by "
        "MAXQDA, ATLAS.ti, NVivo or QualCoder: each codable code an option, child codes as 'Parent › Child'",
    )
    init.add_argument(
        "--evidence",
        action="store_true",
        help="let predictions highlight why each code is suggested: an evidence <Labels> tag on the "
        "segment (the study form's evidence variant, or added to --label-config's form)",
    )
    init.add_argument("--data", help="segments to import: JSONL (text, id?, question?) or CSV; empty: none")
    init.add_argument("--public-url", help="Label Studio's address in your browser, for the printed link")
    init.add_argument("--wait", type=float, default=120, help="seconds to wait for Label Studio (120)")
    init.add_argument(
        "--webhook-timeout", type=float, default=60, help="seconds to wait for the webhook's auth (60)"
    )
    init.set_defaults(handler=cmd_init)
