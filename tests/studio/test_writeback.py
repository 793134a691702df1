"""Write-back order: the queue head goes live first, the rest follows or yields to newer work."""

import time

import pytest

from backend.studio.client import PREDICTION_CHUNK
from backend.studio.writeback import IncompleteImport, write_version
from tests.fakes import FakeStudio


def studio_with(versions=(), tasks=3000):
    """A fake Label Studio whose project holds `tasks` tasks and predictions of `versions`."""
    studio = FakeStudio()
    for i in range(tasks):
        studio.add_task(f"segment {i}")
    studio.predictions = [{"task": -1, "model_version": version} for version in versions]
    return studio


def predictions(n, version="v2-20260101000001"):
    return [{"task": i, "score": i / n, "model_version": version} for i in range(n)]


def write_until_newer_work(studio, calls: int, **options) -> bool:
    """Write v2 (3000 predictions) to a project where newer work waits once `calls` calls were made."""

    def newer_work_waits() -> bool:
        return len(studio.calls) >= calls

    return write_version(
        studio,
        1,
        "v2-20260101000001",
        predictions(3000),
        on_live=lambda: None,
        interrupted=newer_work_waits,
        **options,
    )


def test_head_one_by_one_then_the_rest_in_bulk_then_old_versions_go():
    studio = studio_with(versions=["v1-20260101000000", "v2-20260101000001", "someone-elses"])
    live = []
    n = 50 + PREDICTION_CHUNK + 10
    done = write_version(
        studio, 1, "v2-20260101000001", predictions(n), first=2, head=50, on_live=lambda: live.append(1)
    )
    assert done is True and live == [1]
    assert studio.calls == [
        ("create", 1),
        ("create", 1),
        ("serve", "v2-20260101000001"),
        *[("create", 1)] * 48,
        ("import", PREDICTION_CHUNK),
        ("import", 10),
        ("delete", "v1-20260101000000"),
    ]
    written = [
        p["task"] for p in studio.predictions if p["model_version"] == "v2-20260101000001" and "score" in p
    ]
    assert sorted(written) == list(range(n)), "every task once, most informative first"


def test_newer_work_stops_the_head_between_two_single_creates():
    studio = studio_with(versions=["v1-20260101000000"])
    done = write_until_newer_work(studio, 5, first=1, head=100)
    assert done is False
    assert studio.calls == [("create", 1), ("serve", "v2-20260101000001"), *[("create", 1)] * 3]


def test_newer_work_stops_the_rest_and_keeps_old_versions():
    studio = studio_with(versions=["v1-20260101000000"])
    done = write_until_newer_work(studio, 4, first=2)
    assert done is False
    assert studio.calls == [
        ("create", 1),
        ("create", 1),
        ("serve", "v2-20260101000001"),
        ("import", PREDICTION_CHUNK),
    ]


def test_a_refused_prediction_before_the_switch_means_nothing_goes_live():
    studio = studio_with(tasks=5)
    with pytest.raises(IncompleteImport, match="refused the prediction of v3-20260101000002 for task 7"):
        write_version(
            studio,
            1,
            "v3-20260101000002",
            [{"task": 7, "score": 0.1, "model_version": "v3-20260101000002"}],
            first=1,
            on_live=lambda: None,
        )
    assert studio.calls == [("create", 1)]


def test_a_dropped_prediction_of_a_bulk_import_is_reported():
    studio = studio_with(tasks=5)
    studio.drop = 1
    with pytest.raises(IncompleteImport, match="created 4 of 5"):
        write_version(
            studio, 1, "v3-20260101000002", predictions(5, "v3-20260101000002"), first=0, on_live=lambda: None
        )


def test_the_rest_waits_for_a_pause_and_yields_to_the_next_annotation():
    studio, polls = studio_with(), []

    def next_annotation_arrives():
        polls.append(1)
        return len(polls) >= 3

    done = write_version(
        studio,
        1,
        "v2-20260101000001",
        predictions(500),
        first=1,
        on_live=lambda: None,
        interrupted=next_annotation_arrives,
        rest_after=5.0,
    )
    assert done is False and studio.calls == [("create", 1), ("serve", "v2-20260101000001")]
    quiet = studio_with()
    started = time.monotonic()
    assert (
        write_version(
            quiet, 1, "v2-20260101000001", predictions(500), first=1, on_live=lambda: None, rest_after=0.5
        )
        is True
    )
    assert time.monotonic() - started >= 0.5 and ("import", 499) in quiet.calls


def test_a_replaced_version_stays_while_a_coder_may_still_have_its_task_open():
    """Label Studio refuses a submit whose `parent_prediction` was deleted (found in the browser
    test): a version is deleted only once it was replaced `after` seconds ago."""
    from datetime import UTC, datetime

    from backend.studio.writeback import delete_replaced_versions

    versions = ["v1-20261201100000", "v2-20261201101000", "v3-20261201112900", "v4-20261201113000"]
    studio = studio_with(versions=[*versions, "someone-elses"])
    now = datetime(2026, 12, 1, 11, 30, 30, tzinfo=UTC)
    deleted = delete_replaced_versions(studio, 1, keep="v4-20261201113000", after=1800, now=now)
    assert deleted == ["v1-20261201100000"], "v2 was replaced by v3 only a minute ago, v3 by v4 just now"
    assert delete_replaced_versions(studio, 1, keep="v4-20261201113000", after=0, now=now) == versions[1:3]


def test_codebook_queues_are_ours_and_replaced_in_the_order_they_were_made():
    from datetime import UTC, datetime

    from backend.studio.writeback import delete_replaced_versions

    versions = ["v0-codebook-20261201100500", "v0-codebook-20261201100000", "v1-20261201101000"]
    studio = studio_with(versions=versions)
    now = datetime(2026, 12, 1, 10, 20, 0, tzinfo=UTC)
    deleted = delete_replaced_versions(studio, 1, keep="v1-20261201101000", after=900, now=now)
    assert deleted == ["v0-codebook-20261201100000"], "replaced by the later codebook queue 15 min ago"
    assert delete_replaced_versions(studio, 1, keep="v1-20261201101000", after=0, now=now) == [versions[0]]


def test_a_version_made_after_the_one_kept_is_never_deleted():
    from backend.studio.writeback import delete_replaced_versions

    studio = studio_with(versions=["v0-codebook-20261201100000", "v1-20261201101000"])
    assert delete_replaced_versions(studio, 1, keep="v0-codebook-20261201100000") == []
