"""The exports folder keeps one export per format: a new one replaces the old files whole, a failed one
leaves them as they were, and nothing half-written stays behind."""

import pytest

from backend.storage.exports import ExportRecord, ExportStore
from backend.storage.layout import ProjectDir


def test_a_new_export_replaces_the_old_files_and_a_failed_one_leaves_them(tmp_path):
    store = ExportStore(ProjectDir(tmp_path, "4"))
    store.folder.mkdir(parents=True)
    with store.writing("csv") as out:
        out.write_text("old")
        out.with_name("corpus.about.md").write_text("old about")
    with store.writing("csv") as out:
        out.write_text("new")  # this export has no about file: the old one is not kept beside it
    assert store.file("csv").read_text() == "new" and store.file("csv", 2) is None
    with pytest.raises(OSError), store.writing("csv") as out:
        out.write_text("half")
        raise OSError("disk full")
    assert store.file("csv").read_text() == "new"
    assert sorted(path.name for path in store.folder.iterdir()) == ["corpus.csv"]
    assert store.file("qdpx") is None


def test_a_damaged_record_reads_as_none_asked_for(tmp_path):
    store = ExportStore(ProjectDir(tmp_path, "4"))
    store.update(lambda records: records.formats.update(csv=ExportRecord()))
    assert list(store.read().formats) == ["csv"]
    store.record.write_text("{not json")
    assert store.read().formats == {}
