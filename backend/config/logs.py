"""Logging set-up shared by the command line, the server and the worker processes.

A round should log what a lead can act on, and nothing else: library warnings that need no action
(a code without positives yet, an agreement figure that is undefined and reported as null, a
deprecation inside MLflow), library banners and per-step progress bars are silenced here, in one
place, unless LOG_LEVEL=DEBUG.
"""

import logging
import re

QUIET_LIBRARIES = (
    "httpx",
    "httpcore",
    "urllib3",
    "sentence_transformers",
    "setfit",
    "transformers",
    "filelock",
)
# Read by the libraries when they are imported: a worker process gets them in its environment
# (queue/scheduler.py), so they hold before any library is loaded.
QUIET_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",  # transformers and setfit: banners, "model_head.pkl not found"
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",  # setfit's and sentence-transformers' per-step bars in the server log
}
NO_ACTION_NEEDED = (  # regular expressions, searched in the warning's text
    # one-vs-rest: a code with no positive among the labels yet says "no" (expected early on)
    r"Label not .* is present in all training examples",
    # agreement of two coders who only ever gave one answer: reported as null
    r"have only one label in common",
    # a CPU machine has no accelerator to pin memory for
    r"'pin_memory' argument is set as true but no accelerator",
    # MLflow's own use of SQLAlchemy
    r"``noload`` loader strategy is deprecated",
)
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class NoActionNeeded(logging.Filter):
    """Drops the warnings of NO_ACTION_NEEDED. Warnings go through logging (captureWarnings) and are
    filtered there, because libraries put their own warning filters in front of ours (MLflow's
    SQLAlchemy warning came through a `warnings.filterwarnings` of ours)."""

    patterns = tuple(re.compile(pattern) for pattern in NO_ACTION_NEEDED)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not any(pattern.search(text) for pattern in self.patterns)


def setup_logging(level: str = "INFO") -> None:
    """Our messages at `level`; chatty libraries only from WARNING, and no warnings that need no
    action (unless we debug). An unknown level logs at INFO: the settings report it by name."""
    level = level.upper() if level.upper() in LEVELS else "INFO"
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    if level == "DEBUG":
        return
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings_logger = logging.getLogger("py.warnings")
    if not any(isinstance(f, NoActionNeeded) for f in warnings_logger.filters):
        warnings_logger.addFilter(NoActionNeeded())
