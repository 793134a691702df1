"""Version names: built and read in one place, their shape unchanged (Label Studio and disks hold them)."""

from datetime import UTC, datetime

from backend.domain.versions import (
    codebook_version_name,
    created_at,
    is_numbered,
    is_ours,
    made_order,
    version_name,
    version_number,
)

MADE = datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC)


def test_a_rounds_version_is_its_number_and_its_utc_time_to_the_second():
    assert version_name(12, MADE) == "v12-20260304050607"
    assert codebook_version_name(MADE) == "v0-codebook-20260304050607"


def test_the_names_read_back():
    for name in (version_name(12, MADE), codebook_version_name(MADE)):
        assert is_ours(name) and is_numbered(name)
        assert created_at(name) == MADE.replace(microsecond=0)
    assert version_number(version_name(12, MADE)) == 12
    assert version_number(codebook_version_name(MADE)) == 0


def test_other_names_are_not_ours():
    for name in ("v1", "v1-2026", "v1-20260304050607-x", "model-v1-20260304050607", "INITIAL", ""):
        assert not is_ours(name)
    assert not is_numbered("state.json") and version_number("state.json") == 0
    assert is_numbered("v3-anything") and version_number("v3-anything") == 3  # a directory of a version


def test_versions_sort_in_the_order_they_were_made():
    names = [
        "v10-20260101000003",
        "v0-codebook-20260101000001",
        "v2-20260101000002",
        "v0-codebook-20250101000000",
    ]
    assert sorted(names, key=made_order) == [
        "v0-codebook-20250101000000",
        "v0-codebook-20260101000001",
        "v2-20260101000002",
        "v10-20260101000003",
    ]
