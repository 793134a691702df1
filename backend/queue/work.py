"""The queue's vocabulary: lanes and kinds of work (no imports of ours, so every layer may name them)."""

from __future__ import annotations

from enum import StrEnum


class Lane(StrEnum):
    """Two lanes of work per project, each with its own lock, so fine-tuning a body never holds up
    the head refits that keep the queue fresh."""

    FAST = "fast"
    BODY = "body"


class WorkKind(StrEnum):
    """What a request asks for: a round after annotations, predictions for imported tasks, a body,
    encoding the pool before the first round, or the exports a lead asked for on the status page (the
    last three in the background, like a body)."""

    TRAIN = "train"
    PREDICT = "predict"
    BODY = "body"
    EMBED = "embed"
    EXPORT = "export"

    @property
    def lane(self) -> Lane:
        return Lane.BODY if self in (WorkKind.BODY, WorkKind.EMBED, WorkKind.EXPORT) else Lane.FAST


# The kinds of each lane, in the order a worker takes them ('train' before 'predict'; an export
# first: a lead waits for it, and it takes seconds to minutes where a body takes many; a new body
# before encoding the pool: the body encodes the pool itself).
LANE_KINDS: dict[Lane, tuple[WorkKind, ...]] = {
    Lane.FAST: (WorkKind.TRAIN, WorkKind.PREDICT),
    Lane.BODY: (WorkKind.EXPORT, WorkKind.BODY, WorkKind.EMBED),
}
