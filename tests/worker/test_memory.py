"""Encoding lifts the worker's small mmap threshold for its duration and puts it back after."""

import pytest

from backend.worker import memory


class RecordingLibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, parameter, value):
        self.calls.append(("mallopt", parameter, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad))
        return 1


@pytest.fixture
def libc(monkeypatch):
    recording = RecordingLibc()
    monkeypatch.setattr(memory, "_libc", lambda: recording)
    return recording


def test_encoding_gets_room_and_the_worker_its_threshold_back(libc, monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    with pytest.raises(RuntimeError), memory.encoding_allocations():
        assert libc.calls == [("mallopt", memory.M_MMAP_THRESHOLD, memory.ENCODING_MMAP_THRESHOLD)]
        raise RuntimeError("an encoding that fails still restores the threshold")
    assert libc.calls[1:] == [("mallopt", memory.M_MMAP_THRESHOLD, 131072), ("malloc_trim", 0)]


@pytest.mark.parametrize("configured", [None, "", "67108864", "lots"])
def test_glibcs_own_or_a_large_threshold_is_left_alone(libc, monkeypatch, configured):
    if configured is None:
        monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    else:
        monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", configured)
    with memory.encoding_allocations():
        pass
    assert libc.calls == []
