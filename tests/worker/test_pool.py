"""The kept pool listing: what the fast loop ranks between listings."""

import json
import time

from backend.domain.scheme import parse_label_config
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


SCHEME = parse_label_config(
    '<View><Text name="text" value="$text"/><Choices name="c" toName="text" choice="multiple">'
    '<Choice value="a"/></Choices></View>'
)


def pool_of(tmp_path, studio) -> Pool:
    return Pool(5, studio, PoolListing(ProjectDir(tmp_path, "5")))


def unlabeled(pool: Pool, annotated_ids=()) -> dict[int, str]:
    """The pool's unlabeled tasks as the fast loop reads them: id → text."""
    segments = pool.segments(SCHEME)
    kept = segments.unlabeled(annotated_ids)
    return dict(zip(segments.ids[kept].tolist(), segments.texts[kept].tolist(), strict=True))


def test_the_listing_is_kept_and_annotated_tasks_leave_it(tmp_path):
    studio = studio_with(["a", "b", "c"])
    pool = pool_of(tmp_path, studio)
    assert unlabeled(pool) == {0: "a", 1: "b", 2: "c"}
    assert unlabeled(pool, annotated_ids=[1]) == {0: "a", 2: "c"}
    assert studio.listings == 1
    assert studio.listed == [(False, True)], "the pool is listed without annotations and predictions"


def test_tasks_added_while_the_pool_is_listed_are_kept(tmp_path):
    studio = studio_with(["a"])
    pool, other_lane = pool_of(tmp_path, studio), pool_of(tmp_path, studio)
    pool.refresh()
    studio.add_task("b")
    studio.while_listing = lambda: other_lane.add([Task(9, {"text": "new"})])
    assert sorted(pool.refresh()) == [0, 1, 9]
    assert sorted(unlabeled(pool)) == [0, 1, 9] and studio.listings == 2


def test_an_old_listing_is_refreshed_however_recently_tasks_were_added(tmp_path):
    studio = studio_with(["a"])
    pool = pool_of(tmp_path, studio)
    pool.refresh()
    kept = json.loads(pool.listing.path.read_text())
    pool.listing.path.write_text(json.dumps(kept | {"listed_at": time.time() - MAX_AGE_SECONDS - 1}))
    pool.add([Task(7, {"text": "b"})])
    studio.all[0] = Task(0, {"text": "a edited"})
    studio.add_task("c")
    assert unlabeled(pool) == {0: "a edited", 1: "c"} and studio.listings == 2


def test_a_listing_in_an_older_format_is_listed_afresh(tmp_path):
    studio = studio_with(["a", "b"])
    pool = pool_of(tmp_path, studio)
    pool.listing.path.parent.mkdir(parents=True)
    pool.listing.path.write_text(json.dumps({"1": {"text": "a"}}))
    assert sorted(unlabeled(pool)) == [0, 1] and studio.listings == 1


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


def test_rounds_on_an_unchanged_listing_share_its_segments_and_a_new_listing_brings_new_ones(tmp_path):
    """Segments are made once per listing: what a round computes from them is kept with them."""
    studio = studio_with(["a", "b", "c"])
    pool = pool_of(tmp_path, studio)
    first = pool.segments(SCHEME)
    assert pool.segments(SCHEME) is first and unlabeled(pool, [1]) == {0: "a", 2: "c"}
    studio.all[0] = Task(0, {"text": "a edited"})
    pool.refresh()
    assert pool.segments(SCHEME) is not first and unlabeled(pool) == {0: "a edited", 1: "b", 2: "c"}


def test_a_task_without_text_is_a_blank_segment(tmp_path):
    studio = studio_with(["a", "  "])
    studio.add_task(None)
    segments = pool_of(tmp_path, studio).segments(SCHEME)
    assert segments.texts.tolist() == ["a", "  ", ""] and segments.filled().tolist() == [True, False, False]
