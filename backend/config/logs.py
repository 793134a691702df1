"""Logging set-up shared by the command line, the server and the worker processes."""

import logging

QUIET_LIBRARIES = (
    "httpx",
    "httpcore",
    "urllib3",
    "sentence_transformers",
    "setfit",
    "transformers",
    "filelock",
)


def setup_logging(level: str = "INFO") -> None:
    """Our messages at `level`; chatty libraries only from WARNING (unless we debug)."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level.upper() != "DEBUG":
        for name in QUIET_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)
