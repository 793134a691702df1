"""Logging set-up shared by the command line, the server and the worker processes.

A round should log what a lead can act on, and nothing else: library warnings that need no action
(a code without positives yet, an agreement figure that is undefined and reported as null, a
deprecation inside MLflow), library banners and per-step progress bars are silenced here, in one
place, unless LOG_LEVEL=DEBUG.
"""

import logging
import warnings

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
# (worker/scheduler.py), so they hold before any library is loaded.
QUIET_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",  # transformers and setfit: banners, "model_head.pkl not found"
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",  # setfit's and sentence-transformers' per-step bars in the server log
}
NO_ACTION_NEEDED = (
    # one-vs-rest: a code with no positive among the labels yet says "no" (expected early on)
    "Label not .* is present in all training examples",
    # agreement of two coders who only ever gave one answer: reported as null
    ".*have only one label in common.*",
    # a CPU machine has no accelerator to pin memory for
    ".*pin_memory.*",
    # MLflow's own use of SQLAlchemy
    ".*``noload`` loader strategy is deprecated.*",
)
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def setup_logging(level: str = "INFO") -> None:
    """Our messages at `level`; chatty libraries only from WARNING, and no warnings that need no
    action (unless we debug). An unknown level logs at INFO: the settings report it by name."""
    level = level.upper() if level.upper() in LEVELS else "INFO"
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level == "DEBUG":
        return
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in NO_ACTION_NEEDED:
        warnings.filterwarnings("ignore", message=message)
