"""What the training jobs share: saving a version, and waiting for enough examples."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from backend.config import LoopSettings
from backend.domain.annotations import LabeledSet
from backend.learning.base import CodingModel
from backend.storage.state import Monitoring, StateStore
from backend.storage.versions import ModelStore, ModelVersion

log = logging.getLogger(__name__)


class VersionSaver:
    """Saves a project's versions with what they were trained on, never pruning one still in use."""

    def __init__(self, project: str, store: ModelStore, states: StateStore, public_settings: Mapping):
        self.project, self.store, self.states = project, store, states
        self.public_settings = dict(public_settings)

    def save(
        self, model: CodingModel, labeled: LabeledSet, seconds: float, round_kind: str, **extra: object
    ) -> ModelVersion:
        """Save a version made by a 'head', 'body' or 'full' round."""
        state = self.states.read()
        in_use = [name for name in (state.current_version, state.body.version) if name]
        return self.store.save(
            self.project,
            model,
            n_labeled=len(labeled),
            training_seconds=seconds,
            config=self.public_settings,
            extra={"round": round_kind, **extra},
            keep_also=in_use,
        )


def wait_for_examples(
    project: str, labeled: LabeledSet, loop: LoopSettings, states: StateStore, watch: Monitoring | None = None
) -> bool:
    """Whether the round must wait for more examples. A fast-lane round (one with a `watch`) records
    the examples it found either way, so /metrics counts them even if the round then fails."""
    enough = len(labeled) >= loop.min_annotations_to_train
    if not enough:
        log.info(
            "project %s: %d training examples, waiting for %d",
            project,
            len(labeled),
            loop.min_annotations_to_train,
        )
    if watch is not None:

        def found(state) -> None:
            state.monitoring = state.monitoring.model_copy(update=watch.model_dump(exclude_none=True))
            state.labeled = len(labeled)
            state.waiting_for = None if enough else loop.min_annotations_to_train

        states.update(found)
    return not enough
