"""A MODEL_DIR written by the code before the restructuring loads and keeps working.

tests/fixtures/legacy_model_dir was made by that code (commit 9d02192; see tests/fixtures/README.md):
a flat state.json, a fine-tuned body (v2) with its embedding cache, a head version on it (v3) with
its pool.npz, and the kept pool listing.
"""

import shutil

import numpy as np
import pytest

from backend.config import load_settings
from backend.domain.versions import LIVE
from backend.queue.work import WorkKind
from backend.storage.embeddings import EmbeddingCache
from backend.storage.layout import StoreLayout
from backend.storage.listing import PoolListing
from backend.storage.ranked_pool import read_ranked_pool
from backend.storage.state import LaneStatus, StateStore
from backend.storage.versions import ModelStore
from backend.worker.wiring import project_work
from tests.fakes import FakeStudio, RecordingQueue
from tests.helpers import FIXTURES

HEAD, BODY = "v3-20261201224348", "v2-20261201224346"


@pytest.fixture
def legacy(tmp_path):
    root = tmp_path / "models"
    shutil.copytree(FIXTURES / "legacy_model_dir", root)
    return root


def test_state_versions_pools_and_caches_of_the_old_layout_load(legacy, segments):
    layout = StoreLayout(legacy)
    state = StateStore(layout.project("1")).read()
    assert (state.current_version, state.body.version, state.body.labeled) == (HEAD, BODY, 12)
    assert state.fast.status is LaneStatus.IDLE and state.labeled == 13 and len(state.rounds) == 4
    assert state.monitoring.label_counts["physical_health"] == 9 and state.monitoring.quality["method"]

    store = ModelStore(legacy)
    assert [v.name for v in store.versions("1")] == [BODY, HEAD]
    head = store.load(store.get("1", HEAD))
    proba = head.predict_proba([s["text"] for s in segments[:3]])
    assert proba.shape == (3, len(head.codes)) and np.isfinite(proba).all()

    pool = read_ranked_pool(store.get("1", HEAD).path)
    assert 99 in pool.ids() and pool.labeled.shape == (13, len(head.codes)), "the imported task was recorded"

    def never(texts):
        raise AssertionError(f"encoded {texts} again")

    cache = EmbeddingCache(store.get("1", BODY).path / "embeddings")
    assert len(cache) > 20 and cache.embed([segments[0]["text"]], never).shape == (1, 16)
    listing = PoolListing(layout.project("1")).read()
    assert len(listing.tasks) == 25 and listing.added_at.keys() == {99}, "24 listed, one imported since"


def test_a_head_refit_on_the_old_layout_serves_a_new_version_on_the_old_body(legacy, segments):
    settings = load_settings(
        model_name=str(FIXTURES / "tiny-model"),
        model_dir=legacy,
        max_length=32,
        min_annotations_to_train=10,
    )
    studio = FakeStudio(segments, annotated=12)
    studio.annotate(20, segments[20]["codes"], user=1, when="3")
    studio.annotate(21, segments[21]["codes"], user=1, when="4")
    project_work("1", settings, studio, RecordingQueue()).run(WorkKind.TRAIN)

    states = StateStore(StoreLayout(legacy).project("1"))
    state = states.read()
    assert state.fast.status is LaneStatus.IDLE, state.fast.error
    assert state.current_version.startswith("v4-") and state.labeled == 14 and len(state.rounds) == 5
    assert ModelStore(legacy).get("1", state.current_version).metadata["body"] == BODY
    assert '"schema_version": 1' in states.dir.state.read_text(), "the state is written in the new schema"
    assert studio.served == [LIVE], "the project serves the one name from its first new version on"
