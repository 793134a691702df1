"""The kept pool listing: what the fast loop ranks between listings."""

import json
import time

from backend.pool import MAX_AGE_SECONDS, PoolFile
from backend.studio import Task


class ListingStudio:
    """Lists its unlabeled tasks; `during` runs half-way through (another lane at work)."""

    def __init__(self, tasks: dict[int, str], during=None):
        self.unlabeled, self.during, self.listings = tasks, during, 0

    def tasks(self, project, *, annotated, data_only=False):
        assert not annotated and data_only, "the pool is listed without annotations and predictions"
        self.listings += 1
        for number, (task_id, text) in enumerate(list(self.unlabeled.items())):
            if number == 1 and self.during:
                self.during()
            yield Task(task_id, {"text": text})


def test_the_listing_is_kept_and_annotated_tasks_leave_it(tmp_path):
    studio, pool = ListingStudio({1: "a", 2: "b", 3: "c"}), PoolFile(tmp_path, "5")
    assert [t.id for t in pool.tasks(studio, annotated_ids=[])] == [1, 2, 3]
    assert [t.id for t in pool.tasks(studio, annotated_ids=[2])] == [1, 3]
    assert studio.listings == 1


def test_tasks_added_while_the_pool_is_listed_are_kept(tmp_path):
    pool, other_lane = PoolFile(tmp_path, "5"), PoolFile(tmp_path, "5")
    pool.refresh(ListingStudio({1: "a"}))
    studio = ListingStudio({1: "a", 2: "b"}, during=lambda: other_lane.add([Task(9, {"text": "new"})]))
    assert sorted(pool.refresh(studio)) == [1, 2, 9]
    assert sorted(t.id for t in pool.tasks(studio, [])) == [1, 2, 9] and studio.listings == 1


def test_an_old_listing_is_refreshed_however_recently_tasks_were_added(tmp_path):
    pool = PoolFile(tmp_path, "5")
    pool.refresh(ListingStudio({1: "a"}))
    kept = json.loads(pool.path.read_text())
    pool.path.write_text(json.dumps(kept | {"listed_at": time.time() - MAX_AGE_SECONDS - 1}))
    pool.add([Task(2, {"text": "b"})])
    studio = ListingStudio({1: "a edited", 3: "c"})
    tasks = pool.tasks(studio, [])
    assert studio.listings == 1 and {t.id: t.data["text"] for t in tasks} == {1: "a edited", 3: "c"}


def test_a_listing_in_an_older_format_is_listed_afresh(tmp_path):
    pool = PoolFile(tmp_path, "5")
    pool.path.parent.mkdir(parents=True)
    pool.path.write_text(json.dumps({"1": {"text": "a"}}))
    studio = ListingStudio({1: "a", 2: "b"})
    assert [t.id for t in pool.tasks(studio, [])] == [1, 2] and studio.listings == 1
