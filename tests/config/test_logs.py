"""What reaches the log: library warnings that need no action do not; the rest do."""

import subprocess
import sys

EMIT = """
import warnings
from backend.config.logs import setup_logging
setup_logging({level!r})
warnings.filterwarnings("always")  # as a library does: in front of any filter of ours
warnings.warn("Label not 3 is present in all training examples.", UserWarning)
warnings.warn("The ``noload`` loader strategy is deprecated and will be removed", DeprecationWarning)
warnings.warn("`y1`, `y2` and `labels` have only one label in common", UserWarning)
warnings.warn("something a lead should see", UserWarning)
"""


def logged(level: str) -> str:
    code = EMIT.format(level=level)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stderr


def test_warnings_that_need_no_action_are_silenced_even_behind_a_librarys_own_filter():
    log = logged("INFO")
    assert "something a lead should see" in log and "py.warnings" in log
    assert "Label not 3" not in log and "noload" not in log and "only one label in common" not in log


def test_debug_shows_everything():
    log = logged("DEBUG")
    assert "Label not 3" in log and "noload" in log
