"""When the background lane should fine-tune a new body: the first time as soon as there are enough
examples, then after BODY_RETRAIN_EVERY new ones, or (idle) when the project rests with any new ones.
Never with SETFIT_MAX_STEPS=0: heads stay on the base body."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from backend.queue.registry import LaneRegistry
from backend.queue.sweep import repair
from backend.queue.work import Lane, WorkKind
from backend.worker.context import ProjectContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BodyPolicy:
    ctx: ProjectContext
    registry: LaneRegistry
    fine_tunes: bool = True

    def is_due(self, labeled: int, idle: bool = False) -> bool:
        """Whether `labeled` training examples call for a new body."""
        body = self.ctx.states.read().body
        new = labeled - body.labeled
        if labeled < self.ctx.loop.min_annotations_to_train or not self.fine_tunes:
            return False
        first = not body.version and body.choice is None  # a body that lost its judging counts as one
        return first or new >= self.ctx.loop.body_retrain_every or (idle and new > 0)

    def ask_if_due(self, labeled: int, idle: bool = False) -> bool:
        """Request a body when one is due and none is waiting or being fine-tuned; returns whether due."""
        due = self.is_due(labeled, idle)
        ctx = self.ctx
        if not due or ctx.queue.busy(ctx.project, Lane.BODY):
            return due
        repair(ctx.queue, self.registry, ctx.project, Lane.BODY)  # what a dead worker left, asked again
        if WorkKind.BODY not in ctx.queue.pending(ctx.project, Lane.BODY):
            new = labeled - ctx.states.read().body.labeled
            log.info("project %s: %d new example(s) since the last body: fine-tuning one", ctx.project, new)
            ctx.queue.request(ctx.project, WorkKind.BODY)
        return due

    def when_idle(self) -> None:
        """Called by a lingering worker when no annotation came for BODY_RETRAIN_IDLE_SECONDS."""
        labeled = self.ctx.states.read().labeled
        if isinstance(labeled, int):
            self.ask_if_due(labeled, idle=True)
