"""The kept pool listing: what the fast loop ranks between listings."""

import json
import time

from backend.domain.tasks import Task
from backend.storage.layout import ProjectDir
from backend.storage.listing import PoolListing
from backend.worker.pool import MAX_AGE_SECONDS, Pool
from tests.fakes import FakeStudio


def studio_with(texts: list[str]) -> FakeStudio:
    studio = FakeStudio()
    for text in texts:
        studio.add_task(text)
    return studio


def pool_of(tmp_path, studio) -> Pool:
    return Pool(5, studio, PoolListing(ProjectDir(tmp_path, "5")))


def test_the_listing_is_kept_and_annotated_tasks_leave_it(tmp_path):
    studio = studio_with(["a", "b", "c"])
    pool = pool_of(tmp_path, studio)
    assert [t.id for t in pool.unlabeled(annotated_ids=[])] == [0, 1, 2]
    assert [t.id for t in pool.unlabeled(annotated_ids=[1])] == [0, 2]
    assert studio.listings == 1
    assert studio.listed == [(False, True)], "the pool is listed without annotations and predictions"


def test_tasks_added_while_the_pool_is_listed_are_kept(tmp_path):
    studio = studio_with(["a"])
    pool, other_lane = pool_of(tmp_path, studio), pool_of(tmp_path, studio)
    pool.refresh()
    studio.add_task("b")
    studio.while_listing = lambda: other_lane.add([Task(9, {"text": "new"})])
    assert sorted(pool.refresh()) == [0, 1, 9]
    assert sorted(t.id for t in pool.unlabeled([])) == [0, 1, 9] and studio.listings == 2


def test_an_old_listing_is_refreshed_however_recently_tasks_were_added(tmp_path):
    studio = studio_with(["a"])
    pool = pool_of(tmp_path, studio)
    pool.refresh()
    kept = json.loads(pool.listing.path.read_text())
    pool.listing.path.write_text(json.dumps(kept | {"listed_at": time.time() - MAX_AGE_SECONDS - 1}))
    pool.add([Task(7, {"text": "b"})])
    studio.all[0] = Task(0, {"text": "a edited"})
    studio.add_task("c")
    tasks = pool.unlabeled([])
    assert studio.listings == 2 and {t.id: t.data["text"] for t in tasks} == {0: "a edited", 1: "c"}


def test_a_listing_in_an_older_format_is_listed_afresh(tmp_path):
    studio = studio_with(["a", "b"])
    pool = pool_of(tmp_path, studio)
    pool.listing.path.parent.mkdir(parents=True)
    pool.listing.path.write_text(json.dumps({"1": {"text": "a"}}))
    assert [t.id for t in pool.unlabeled([])] == [0, 1] and studio.listings == 1


def test_a_reader_parses_the_listing_once_and_sees_every_write_of_another_lane(tmp_path):
    """The fast lane reads the listing every round: parsed again only when the file changed."""
    reader, other = PoolListing(ProjectDir(tmp_path, "5")), PoolListing(ProjectDir(tmp_path, "5"))
    assert reader.read() is None
    other.replace({1: {"text": "a"}}, time.time())
    first = reader.read()
    assert reader.read() is first, "the same file: not parsed again"
    other.add([Task(2, {"text": "b"})])
    assert sorted(reader.read().tasks) == [1, 2] and sorted(first.tasks) == [1], (
        "a shared listing never changes"
    )
    other.forget()
    assert reader.read() is None


def test_rounds_on_an_unchanged_listing_share_its_tasks_and_a_new_listing_brings_new_ones(tmp_path):
    studio = studio_with(["a", "b", "c"])
    pool = pool_of(tmp_path, studio)
    first = pool.unlabeled([])
    again = pool.unlabeled([1])
    assert [t.id for t in again] == [0, 2] and again[0] is first[0], "made once per listing"
    studio.all[0] = Task(0, {"text": "a edited"})
    pool.refresh()
    assert [t.data["text"] for t in pool.unlabeled([])] == ["a edited", "b", "c"]
