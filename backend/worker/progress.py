"""Progress of a worker's long steps (encoding a pool, writing predictions) in the project's state,
where `/metrics` and `/status` show it with an ETA, and in the log.

Steps report often (every chunk); the state is written at most once per `every` seconds and at the
end of a step, so a fast loop costs no extra disk writes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from backend.storage.state import Progress, StateStore, now

log = logging.getLogger(__name__)


@dataclass
class ProgressReporter:
    """Records one project's step in progress; `done()` clears it."""

    project: str
    states: StateStore
    every: float = 1.0
    _last: float = field(default=0.0, init=False)
    _stage: str | None = field(default=None, init=False)

    def encoding(self, done: int, total: int) -> None:
        self._report("encoding", done, total)

    def writing(self, done: int, total: int) -> None:
        self._report("writing", done, total)

    def done(self) -> None:
        if self._stage is not None:
            self._stage = None
            self.states.update(lambda state: setattr(state, "progress", None))

    def _report(self, stage: str, done: int, total: int) -> None:
        moment = time.monotonic()
        if stage == self._stage and done < total and moment - self._last < self.every:
            return
        self._last = moment

        def record(state) -> None:
            started = state.progress.started_at if state.progress and state.progress.stage == stage else now()
            state.progress = Progress(stage=stage, done=done, total=total, started_at=started)

        if stage != self._stage:
            log.info("project %s: %s %d segments", self.project, stage, total)
        self._stage = stage
        self.states.update(record)
