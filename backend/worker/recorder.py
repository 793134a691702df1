"""A live round's record: its quality estimate, the status page's figures (state) and its MLflow run.

A second or so that a coder who submits again at once need not wait for: a round that finds the
next one waiting leaves its record for the first round that does not (a thread would slow that
next round: both are Python, under one GIL). The MLflow run is a part of its own, left for the next
pause when a round became due meanwhile: the first in a process imports MLflow (seconds). The parts
left over wait in one typed queue, oldest first.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from backend.storage.state import Monitoring, ProjectState
from backend.tracking.project import ProjectTracker
from backend.worker.context import ProjectContext
from backend.worker.labels import ProjectLabels
from backend.worker.monitoring import Monitor, round_figures
from backend.worker.publish import LiveRound


@dataclass(frozen=True)
class RoundToRecord:
    """A live round whose quality, figures and MLflow run are still to be made."""

    labels: ProjectLabels
    measured: Monitoring
    live: LiveRound


@dataclass(frozen=True)
class RunToTrack:
    """A recorded round's MLflow run, still to be logged."""

    version: str
    summary: dict
    ranked_task_ids: np.ndarray


@dataclass
class Recorder:
    """Makes one project's round records, each part when no newer round waits."""

    ctx: ProjectContext
    monitor: Monitor
    tracker: ProjectTracker
    waiting: deque[RoundToRecord | RunToTrack] = field(default_factory=deque)

    def record(self, live_round: RoundToRecord) -> None:
        """Record this round, and the rounds before it that left theirs, unless a newer round waits."""
        self.waiting.append(live_round)
        while self.waiting and not self.ctx.round_waits():
            part = self.waiting.popleft()
            if isinstance(part, RoundToRecord):
                self.waiting.appendleft(self._figures(part))
            else:
                self._track(part)

    def _figures(self, part: RoundToRecord) -> RunToTrack:
        """The round's quality estimate, stopping signal and figures, in the state; its MLflow run
        follows as the next part."""
        trained, labeled = part.live.ranked.trained, part.labels.labeled
        version = trained.version.name
        quality, model_agreement = self.monitor.quality(trained.model, part.labels, trained.embeddings)
        replaced = part.live.replaced
        stopping = self.monitor.stopping(replaced.decisions, replaced.name, version)
        figures = round_figures(version, len(labeled), part.measured.label_counts or {}, quality, stopping)

        def finish(state: ProjectState) -> None:
            state.monitoring.quality, state.monitoring.stopping = quality, stopping
            state.monitoring.model_agreement = model_agreement
            state.add_figures(figures)

        self.ctx.states.update(finish)
        summary = {
            **part.measured.model_dump(),
            "labeled": len(labeled),
            "last_training_seconds": round(trained.seconds, 2),
            "quality": quality,
            "model_agreement": model_agreement,
            "stopping": stopping,
        }
        return RunToTrack(version, summary, part.live.ranked.task_ids)

    def _track(self, part: RunToTrack) -> None:
        """A round's MLflow run, linked from its version's figures."""
        run = self.tracker.log_round(part.version, part.summary, ranked_task_ids=part.ranked_task_ids)
        if run:
            self.ctx.states.update(lambda state: state.link_run(part.version, run))
