"""`serve`, `healthcheck`, `config` and `demo`: running the backend."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backend.cli.errors import UsageError, comma_list
from backend.cli.models import usable_model
from backend.config import Settings, with_overrides


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    """Run the server. Gunicorn's master imports no more than it needs: each worker imports the app
    itself (about 0.1 GB the master would hold for nothing)."""
    from backend.server.auth import refuse_open_server

    overrides = {
        k: v for k, v in {"port": args.port, "workers": args.workers, "threads": args.threads}.items() if v
    }
    settings = usable_model(with_overrides(settings, overrides))
    server = settings.server
    refuse_open_server(server)  # before forking: each gunicorn worker builds its own app (and threads)
    say_how_label_studio_answers(server)
    auth = "on" if server.basic_auth_user else "off"
    where = f"http://{args.host}:{server.port}"
    # flushed here, in the master: a line left in the buffer is written again by each forked worker
    print(f"serving on {where} (basic auth {auth}, models in {server.model_dir})", flush=True)
    print(f"status page: {where}/status", flush=True)
    if args.dev:
        from backend.server.app import create_app

        create_app(settings).run(host=args.host, port=server.port, threaded=True)
        return 0
    from gunicorn.app.base import BaseApplication

    class Gunicorn(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{args.host}:{server.port}")
            self.cfg.set("workers", server.workers)
            self.cfg.set("threads", server.threads)
            self.cfg.set("worker_class", "backend.server.buffering.BufferingWorker")  # whole requests
            self.cfg.set("worker_connections", server.max_connections)
            self.cfg.set("keepalive", server.client_timeout)
            self.cfg.set("timeout", 300)
            self.cfg.set("graceful_timeout", 10)  # requests are short; training runs in its own process
            self.cfg.set("loglevel", server.log_level.lower())
            self.cfg.set("accesslog", "-" if server.access_log or server.log_level == "DEBUG" else None)

        def load(self):
            from backend.server.app import create_app

            return create_app(settings)

    Gunicorn().run()
    return 0


def say_how_label_studio_answers(server) -> None:
    """Check Label Studio and the token once at start: a refused token stops `serve` (every round
    would fail), Label Studio down only warns (it may come up later; /status shows when it does)."""
    from backend.server.connection import check_connection

    connection = check_connection(server)
    if connection.state == "refused":
        raise UsageError(connection.detail)
    if connection.ok:
        print(connection.detail, flush=True)
    else:
        print(f"warning: {connection.detail}; starting anyway (see /status)", file=sys.stderr, flush=True)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Run an RQ worker for the named queues: the rounds of every project whose model store this host
    shares (REDIS_URL; README: When one machine is not enough)."""
    import os

    from backend.queue.redis_queue import GRID_QUEUE, QUEUES, connect
    from backend.queue.scheduler import MALLOC_DEFAULTS, child_env

    if not settings.server.redis_url:
        raise UsageError(
            "worker takes its work from Redis: set REDIS_URL (like redis://:password@redis:6379/0)"
        )
    known = (*QUEUES, GRID_QUEUE)
    queues = comma_list(args.queues) or list(QUEUES)
    if unknown := [name for name in queues if name not in known]:
        raise UsageError(f"--queues: unknown queue(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    if set(queues) - {GRID_QUEUE}:
        usable_model(settings)
    if any(name not in os.environ for name in MALLOC_DEFAULTS):  # glibc reads them at start only
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], child_env())
    os.environ.update(child_env())  # the libraries' banners and progress bars off, as in embedded workers
    from backend.queue.rq_worker import StoppableWorker

    where = f"device {settings.model.device}, models in {settings.server.model_dir}"
    print(f"worker on queue(s) {', '.join(queues)} ({where})", flush=True)
    connection = connect(settings.server.redis_url.get_secret_value())  # RQ sets its own socket timeout
    worker = StoppableWorker(queues, connection=connection)
    worker.work(burst=args.burst, logging_level=settings.server.log_level)
    return 0


def cmd_healthcheck(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 when the local server answers /health (with basic auth when it is on): for Docker."""
    import httpx

    server = settings.server
    auth = None
    if server.basic_auth_user and server.basic_auth_pass:
        auth = (server.basic_auth_user, server.basic_auth_pass.get_secret_value())
    url = f"http://127.0.0.1:{server.port}/health"
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
    for name in ("label_studio_api_key", "basic_auth_pass", "redis_url"):
        print(f"{name.upper()}={'(set)' if getattr(settings.server, name) else ''}")
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from backend.devtools.demo import run_demo
    from backend.resources import demo_segments

    usable_model(settings)  # the backend it starts reads MODEL_NAME from the environment
    options = {
        "limit": args.limit,
        "port": args.port,
        "backend_port": args.backend_port,
        "data_dir": args.data_dir,
        "venv": args.venv,
        "exit_after_setup": args.exit_after_setup,
        "evidence": args.evidence,
    }
    if args.data:
        return run_demo(args.data, **options)
    with demo_segments() as shipped:
        return run_demo(shipped, **options)


# Each command's options that take a value: the type it is read as, and the help.
SERVE_OPTIONS = {
    "--port": (int, "port (default: PORT or 9090)"),
    "--workers": (int, "gunicorn worker processes (default: WORKERS or 1)"),
    "--threads": (int, "threads per worker (default: THREADS or 4)"),
}
DEMO_OPTIONS = {
    "--data": (Path, "segments (JSONL with text, question?) (default: shipped)"),
    "--limit": (int, "import at most this many segments"),
    "--port": (int, "Label Studio's port (default: a free one)"),
    "--backend-port": (int, "the backend's port (default: a free one)"),
    "--data-dir": (Path, "keep Label Studio's data and the models here"),
    "--venv": (Path, "Label Studio's virtualenv (default: LABEL_STUDIO_VENV)"),
}


def add_typed(parser: argparse.ArgumentParser, options: dict[str, tuple[type, str]]) -> None:
    """Add options that each take one value of a type (a table above), in the table's order."""
    for flag, (kind, text) in options.items():
        parser.add_argument(flag, type=kind, help=text)


SERVE_ENVIRONMENT = """environment (`coding-backend config` shows every setting):
  BASIC_AUTH_USER, BASIC_AUTH_PASS  required: the credentials every call must carry (give Label
                                    Studio the same); or ALLOW_UNAUTHENTICATED=true where nobody
                                    else can reach the backend
  LABEL_STUDIO_URL                  where Label Studio is (default http://localhost:8080)
  LABEL_STUDIO_API_KEY              needed for rounds: they read the labels from Label Studio and
                                    write the predictions back (checked at start: a token Label
                                    Studio refuses stops serve)
  BACKEND_URL                       how Label Studio reaches this backend (like
                                    http://backend:9090); without it, the URL of Label Studio's
                                    record of the project's model with our basic-auth user
  MODEL_DIR                         where model versions and state live (default ./data/models)
  MODEL_NAME                        the model: a Hugging Face hub id or a local directory
                                    (checked before starting)
  REDIS_URL                         optional: rounds in `coding-backend worker`s on other hosts
"""


def add_commands(commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the ML backend for Label Studio",
        description="Run the ML backend that Label Studio connects to (in its model settings: this\n"
        "backend's URL and the basic auth below).",
        epilog=SERVE_ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    add_typed(serve, SERVE_OPTIONS)
    serve.add_argument("--dev", action="store_true", help="run Flask's development server instead")
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser("demo", help="Label Studio + backend + a coding project on this machine")
    add_typed(demo, DEMO_OPTIONS)
    demo.add_argument("--exit-after-setup", action="store_true", help="stop once everything is set up")
    demo.add_argument(
        "--evidence",
        action="store_true",
        help="a project with the evidence form: suggestions highlight the words they rest on",
    )
    demo.set_defaults(handler=cmd_demo)

    worker = commands.add_parser("worker", help="run rounds from Redis on this host (REDIS_URL)")
    worker.add_argument(
        "--queues",
        default=None,
        help="comma-separated: fast (rounds after annotations), predict (imported tasks), body (fine-tuning, "
        "encoding), grid (simulate --queue); default fast,predict,body",
    )
    worker.add_argument("--burst", action="store_true", help="exit once the queues are empty")
    worker.set_defaults(handler=cmd_worker)

    health = commands.add_parser("healthcheck", help="exit 0 when the local server answers /health")
    health.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for the answer (default 5)"
    )
    health.set_defaults(handler=cmd_healthcheck)

    show = commands.add_parser("config", help="show the effective configuration and exit")
    show.set_defaults(handler=cmd_config)
