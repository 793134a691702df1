"""Write-back order: the queue head goes live first, the rest follows or yields to newer work."""

import time

import pytest

from backend.studio.client import PREDICTION_CHUNK
from backend.studio.writeback import IncompleteImport, write_version
from tests.fakes import FakeStudio


def studio_with(versions=()):
    """A fake Label Studio whose project holds predictions of `versions`."""
    studio = FakeStudio()
    studio.predictions = [{"task": 0, "model_version": version} for version in versions]
    return studio


def predictions(n, version="v2-20260101000001"):
    return [{"task": i, "score": i / n, "model_version": version} for i in range(n)]


def test_head_first_then_the_rest_then_old_versions_go():
    studio = studio_with(versions=["v1-20260101000000", "v2-20260101000001", "someone-elses"])
    live = []
    n = 50 + PREDICTION_CHUNK + 10
    done = write_version(
        studio, 1, "v2-20260101000001", predictions(n), first=50, on_live=lambda: live.append(1)
    )
    assert done is True and live == [1]
    assert studio.calls == [
        ("import", 50),
        ("serve", "v2-20260101000001"),
        ("import", PREDICTION_CHUNK),
        ("import", 10),
        ("delete", "v1-20260101000000"),
    ]


def test_newer_work_stops_the_rest_and_keeps_old_versions():
    studio = studio_with(versions=["v1-20260101000000"])
    done = write_version(
        studio,
        1,
        "v2-20260101000001",
        predictions(3000),
        first=100,
        on_live=lambda: None,
        interrupted=lambda: len(studio.calls) >= 3,
    )
    assert done is False
    assert studio.calls == [("import", 100), ("serve", "v2-20260101000001"), ("import", PREDICTION_CHUNK)]


def test_a_dropped_prediction_in_the_head_means_nothing_goes_live():
    studio = studio_with()
    studio.drop = 1
    with pytest.raises(IncompleteImport, match="created 9 of 10"):
        write_version(
            studio,
            1,
            "v3-20260101000002",
            predictions(10, "v3-20260101000002"),
            first=10,
            on_live=lambda: None,
        )
    assert ("serve", "v3-20260101000002") not in studio.calls


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
        first=100,
        on_live=lambda: None,
        interrupted=next_annotation_arrives,
        rest_after=5.0,
    )
    assert done is False and studio.calls == [("import", 100), ("serve", "v2-20260101000001")]
    quiet = studio_with()
    started = time.monotonic()
    assert (
        write_version(
            quiet, 1, "v2-20260101000001", predictions(500), first=100, on_live=lambda: None, rest_after=0.5
        )
        is True
    )
    assert time.monotonic() - started >= 0.5 and ("import", 400) in quiet.calls


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
