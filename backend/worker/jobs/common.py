"""What the training jobs share: the steps of a round, saving a version, and counting the examples
a round needs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from backend.domain.annotations import LabeledSet
from backend.learning.base import CodingModel
from backend.storage.state import Monitoring, ProjectState
from backend.storage.versions import ModelVersion
from backend.worker.context import ProjectContext
from backend.worker.monitoring import Monitor
from backend.worker.publish import Publisher
from backend.worker.recorder import Recorder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionSaver:
    """Saves a project's versions with what they were trained on, never pruning one still in use."""

    ctx: ProjectContext
    public_settings: Mapping

    def save(
        self, model: CodingModel, labeled: LabeledSet, seconds: float, round_kind: str, **extra: object
    ) -> ModelVersion:
        """Save a version made by a 'head', 'body' or 'full' round."""
        state = self.ctx.states.read()
        in_use = [name for name in (state.current_version, state.body.version) if name]
        return self.ctx.store.save(
            self.ctx.project,
            model,
            n_labeled=len(labeled),
            training_seconds=seconds,
            config=dict(self.public_settings),
            extra={"round": round_kind, **extra},
            keep_also=in_use,
        )


def too_few_examples(ctx: ProjectContext, labeled: LabeledSet, measured: Monitoring | None = None) -> bool:
    """Whether the round must wait for more examples. A fast-lane round (one that `measured`) records
    the examples it found either way, so /metrics counts them even if the round then fails."""
    needed = ctx.loop.min_annotations_to_train
    enough = len(labeled) >= needed
    if not enough:
        log.info("project %s: %d training examples, waiting for %d", ctx.project, len(labeled), needed)
    if measured is not None:

        def found(state: ProjectState) -> None:
            state.monitoring = state.monitoring.merged(measured)
            state.labeled = len(labeled)
            state.waiting_for = None if enough else needed

        ctx.states.update(found)
    return not enough


@dataclass(frozen=True)
class RoundSteps:
    """What a training round does once it has its labels, in order: measure them, save the trained
    version, publish it (rank, go live, write the rest) and record it."""

    monitor: Monitor
    saver: VersionSaver
    publisher: Publisher
    recorder: Recorder
