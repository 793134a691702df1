"""A real Label Studio 1.23.2 for the end-to-end tests, from its own virtualenv.

The virtualenv is `LABEL_STUDIO_VENV` (default `<repo>/.ls-venv`); `.ci/run` creates it, and a
developer's first run creates it too (a few minutes).
"""

import os
from pathlib import Path

import pytest

from tests.helpers import REPO


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    from backend.devtools.local_studio import LocalLabelStudio, ensure_label_studio

    venv = Path(os.environ.get("LABEL_STUDIO_VENV", REPO / ".ls-venv"))
    executable = ensure_label_studio(venv)
    with LocalLabelStudio(executable, data_dir=tmp_path_factory.mktemp("label-studio")) as server:
        yield server
