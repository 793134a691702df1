"""The settings of the jobs' tests: a tiny SetFit round that trains from 10 annotations."""

import pytest

from backend.config import with_overrides


@pytest.fixture
def settings(tiny_settings, tmp_path):
    return with_overrides(tiny_settings, model_dir=tmp_path, min_annotations_to_train=10)
