"""The fakes stand in for the real thing: same methods, same parameters."""

import inspect

import pytest

from backend.queue.interface import WorkQueue
from backend.queue.scheduler import Scheduler
from backend.studio.client import StudioAPI, StudioClient
from tests.fakes import FakeStudio, RecordingQueue


def protocol_methods(protocol) -> list[str]:
    return [name for name, member in vars(protocol).items() if callable(member) and not name.startswith("_")]


def parameters(function) -> list[tuple[str, object]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize(
    ("protocol", "implementations"),
    [
        (StudioAPI, (StudioClient, FakeStudio)),
        (WorkQueue, (Scheduler, RecordingQueue)),
    ],
)
def test_fakes_and_real_classes_follow_the_same_protocol(protocol, implementations):
    methods = protocol_methods(protocol)
    assert methods, "the protocol declares its methods"
    for cls in implementations:
        for name in methods:
            assert hasattr(cls, name), f"{cls.__name__} lacks {name}"
            assert parameters(getattr(cls, name)) == parameters(getattr(protocol, name)), (
                f"{cls.__name__}.{name} differs from {protocol.__name__}.{name}"
            )
