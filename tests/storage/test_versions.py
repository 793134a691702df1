"""Version bookkeeping on disk, with a stand-in model (the real one is covered in test_model)."""

import os
import time

import numpy as np
import pytest

from backend.learning.base import CodingModel
from backend.storage.layout import InvalidProjectError
from backend.storage.versions import ModelStore


class ConstantModel(CodingModel):
    kind = "constant"

    def __init__(self, fail_on_save: bool = False):
        super().__init__(["a", "b"], [0.5, 0.5])
        self.fail_on_save = fail_on_save

    def _proba(self, texts):
        return np.full((len(texts), 2), 0.3)

    def _save_weights(self, directory):
        (directory / "weights.bin").write_bytes(b"weights")
        if self.fail_on_save:
            raise OSError("disk full")


def save(store, project, model=None, n_labeled=10):
    return store.save(project, model or ConstantModel(), n_labeled=n_labeled, training_seconds=1.5, config={})


def test_metadata_records_what_the_version_was_trained_on(tmp_path):
    version = ModelStore(tmp_path).save(
        "7", ConstantModel(), n_labeled=12, training_seconds=3.25, config={"seed": 1}, extra={"note": "x"}
    )
    metadata = ModelStore(tmp_path).latest("7").metadata
    assert metadata == version.metadata
    assert metadata["codes"] == ["a", "b"] and metadata["kind"] == "constant"
    assert (metadata["n_labeled"], metadata["training_seconds"], metadata["config"]) == (
        12,
        3.25,
        {"seed": 1},
    )
    assert metadata["version"] == version.name and "created_at" in metadata and metadata["note"] == "x"


def test_versions_are_numbered_and_listed_oldest_first(tmp_path):
    store = ModelStore(tmp_path, keep=5)
    names = [save(store, "7", n_labeled=n).name for n in (10, 20, 30)]
    assert [v.name for v in store.versions("7")] == names
    assert [v.number for v in store.versions("7")] == [1, 2, 3]
    assert store.latest("7").metadata["n_labeled"] == 30
    assert store.get("7", names[0]).metadata["n_labeled"] == 10
    assert store.projects() == ["7"]


def test_old_versions_are_pruned(tmp_path):
    store = ModelStore(tmp_path, keep=2)
    for _ in range(4):
        save(store, "p")
    assert [v.number for v in store.versions("p")] == [3, 4]


def test_a_partly_written_version_is_never_listed(tmp_path):
    store = ModelStore(tmp_path)
    save(store, "p")
    (tmp_path / "p" / ".partial-abc").mkdir()
    (tmp_path / "p" / "v9-20260101000000").mkdir()  # renamed by hand, no version.json
    assert [v.number for v in store.versions("p")] == [1]


def test_a_failed_save_leaves_no_trace(tmp_path):
    store = ModelStore(tmp_path)
    with pytest.raises(OSError, match="disk full"):
        save(store, "p", ConstantModel(fail_on_save=True))
    assert store.versions("p") == []
    assert os.listdir(tmp_path / "p") == []


def test_stale_partial_saves_are_cleaned_up(tmp_path):
    store = ModelStore(tmp_path)
    stale = tmp_path / "p" / ".partial-old"
    stale.mkdir(parents=True)
    an_hour_ago = time.time() - 7200
    os.utime(stale, (an_hour_ago, an_hour_ago))
    save(store, "p")
    assert not stale.exists()


@pytest.mark.parametrize("project", ["../etc", "", "a/b", ".hidden"])
def test_project_names_cannot_escape_the_model_dir(tmp_path, project):
    with pytest.raises(InvalidProjectError, match="invalid project name"):
        ModelStore(tmp_path).versions(project)
