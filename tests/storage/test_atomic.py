"""The one atomic writer: a reader sees the old file or the new one, and a failed write leaves no trace."""

import os

import pytest

from backend.storage.atomic import publish_directory, write_atomically, write_with


def test_a_file_is_replaced_whole(tmp_path):
    path = tmp_path / "state.json"
    write_atomically(path, "old")
    write_atomically(path, "new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["state.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial(tmp_path):
    path = tmp_path / "pool.npz"
    write_atomically(path, b"old")

    def fail(handle):
        handle.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_with(path, fail)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["pool.npz"]


def test_a_directory_is_published_once_and_never_over_another(tmp_path):
    partial = tmp_path / ".partial-1"
    partial.mkdir()
    (partial / "weights.bin").write_bytes(b"w")
    publish_directory(partial, tmp_path / "v1-x")
    assert (tmp_path / "v1-x" / "weights.bin").read_bytes() == b"w"
    other = tmp_path / ".partial-2"
    (other / "inner").mkdir(parents=True)
    (tmp_path / "v1-x" / "keep").mkdir()
    with pytest.raises(OSError):
        publish_directory(other, tmp_path / "v1-x")


def test_every_state_write_reaches_the_disk_before_it_counts(tmp_path, monkeypatch):
    """A rename can reach the disk before the data it names: without fsync a power cut leaves an empty
    state.json. The writer syncs the file before the rename and the directory after it."""
    import stat

    from backend.storage import atomic
    from backend.storage.layout import ProjectDir
    from backend.storage.state import StateStore

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_mode), real_fsync(fd)))
    StateStore(ProjectDir(tmp_path, "1")).update(lambda state: setattr(state, "labeled", 3))
    kinds = [("dir" if stat.S_ISDIR(mode) else "file") for mode in synced]
    assert kinds == ["file", "dir"]
