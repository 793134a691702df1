"""A Label Studio task as the rest of the backend sees it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    """What a round needs of a task: its id, data, annotations and predictions."""

    id: int
    data: dict
    annotations: tuple[dict, ...] = ()
    predictions: tuple[dict, ...] = ()
