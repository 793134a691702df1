"""A project's state: the one typed record every process reads (`/metrics`, `/predict`, the workers).

``MODEL_DIR/<project>/state.json`` holds a :class:`ProjectState`: each lane's status and last error,
the version Label Studio serves, the newest fine-tuned body, the project's monitoring and the last
rounds. :class:`StateStore`
is its only reader and writer: every change is a read-modify-write under the project's state lock,
written atomically, so the two lanes of a project never lose each other's fields. A file written
before the schema existed (flat keys) is read as this schema.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend.domain.versions import version_number
from backend.storage.atomic import write_atomically
from backend.storage.layout import VERSION_METADATA, ProjectDir
from backend.storage.locks import file_lock

log = logging.getLogger(__name__)
ROUND_HISTORY = 20
FIGURE_HISTORY = 500  # rounds of figures kept for the status page's plots
SCHEMA_VERSION = 1


class LaneStatus(StrEnum):
    """A lane's status as state.json records it and the status page shows it: idle, failed, or at work
    in the words of the work under way."""

    IDLE = "idle"
    TRAINING = "training"
    PREDICTING = "predicting"
    ENCODING = "encoding"
    EXPORTING = "exporting"
    FAILED = "failed"

    @property
    def busy(self) -> bool:
        return self in (LaneStatus.TRAINING, LaneStatus.PREDICTING, LaneStatus.ENCODING, LaneStatus.EXPORTING)


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=True)


class LaneState(_Record):
    """A lane's record. The queue (queue/registry.py) only starts, finishes and fails work by its kind
    (a WorkKind of queue/work.py, as a string); the record says it in the status page's words."""

    # The words of the lane's kinds of work while at it (the body lane's are BodyLaneState's).
    AT_WORK: ClassVar[dict[str, LaneStatus]] = {
        "train": LaneStatus.TRAINING,
        "predict": LaneStatus.PREDICTING,
    }

    status: LaneStatus = LaneStatus.IDLE
    error: str | None = None
    retried: bool = False  # the work in progress is already a second attempt (queue/registry.py)

    @property
    def busy(self) -> bool:
        return self.status.busy

    def start(self, kind: str) -> None:
        self.status = self.AT_WORK[kind]

    def at_work_on(self) -> str | None:
        """The kind of work the lane is at (its first kind if the word is not its own); None when idle
        or failed."""
        if not self.busy:
            return None
        kinds = [kind for kind, status in self.AT_WORK.items() if status is self.status]
        return (kinds or list(self.AT_WORK))[0]

    def finish(self, error: str | None) -> None:
        """Idle again, or failed with `error`; a success ends the second attempt's watch."""
        self.status, self.error = (LaneStatus.FAILED, error) if error else (LaneStatus.IDLE, None)
        if not error:
            self.retried = False

    def fail(self, reason: str) -> None:
        self.status, self.error = LaneStatus.FAILED, reason


class CoderChoice(_Record):
    """A fine-tuned body's head against the base body's on one coder's held-out answers (the heads
    fit on the other coders' answers)."""

    fine_tuned_f1: float
    base_f1: float
    held_out: int


class BodyChoice(_Record):
    """Whether the last fine-tuned body was kept: its head's held-out macro-F1 against the base
    body's, the one-sided 95 % lower bound of the gain (kept only above 0; None: judged before it
    was recorded), the coder pairs it was judged across (0: not across coders), and per coder
    (named as shown) when several coded (learning/body_choice.py)."""

    fine_tuned_f1: float
    base_f1: float
    held_out: int
    lower: float | None = None
    across_coders: int = 0
    kept: bool
    judged_at: str
    by_coder: dict[str, CoderChoice] = {}


class BodyLaneState(LaneState):
    """The body lane, and the newest body it fine-tuned (the fast loop refits heads on it)."""

    AT_WORK: ClassVar[dict[str, LaneStatus]] = {
        "body": LaneStatus.TRAINING,
        "embed": LaneStatus.ENCODING,
        "export": LaneStatus.EXPORTING,
    }

    version: str | None = None
    labeled: int = 0
    seconds: float | None = None
    choice: BodyChoice | None = (
        None  # None: the body was not judged (too few segments, or BODY_SELECTION=off)
    )


class RoundRecord(_Record):
    kind: str
    outcome: Literal["ok", "failed"]
    started_at: str
    finished_at: str


class Monitoring(_Record):
    """What the last round measured for the project lead (see worker/monitoring.py)."""

    labeled_tasks: int | None = None
    coders: dict[str, int] | None = None
    label_counts: dict[str, int] | None = None
    rare_codes: dict[str, int] | None = None
    quality: dict[str, Any] | None = None
    stopping: dict[str, Any] | None = None
    agreement: dict[str, Any] | None = None
    model_agreement: dict[str, Any] | None = None  # the model as one more coder (out-of-fold answers)
    automation_bias: dict[str, Any] | None = None  # suggestions kept unchanged (learning/bias.py)

    def merged(self, newer: Monitoring) -> Monitoring:
        """These figures with what `newer` measured (its unset figures keep ours)."""
        return self.model_copy(update=newer.model_dump(exclude_none=True))


class RoundFigures(_Record):
    """What one version measured when it went live: a point of the status page's plots."""

    version: str
    finished_at: str
    labeled: int
    label_counts: dict[str, int] = Field(default_factory=dict)
    f1: dict[str, float | None] = Field(default_factory=dict)  # cross-validated, per code
    macro_f1: float | None = None
    changed_share: float | None = None  # the stopping signal: unlabeled tasks whose codes changed
    stop: bool | None = None
    mlflow_run: str | None = None  # "<experiment id>/<run id>" when the round was recorded


class Progress(_Record):
    """Long work under way in a worker (encoding a pool, writing predictions), for its ETA."""

    stage: Literal["encoding", "writing"]
    done: int
    total: int
    started_at: str


class PoolEncoding(_Record):
    """The pool encoded ahead of the first round: with which body, how many segments, when."""

    body: str
    segments: int
    finished_at: str


class CodebookStart(_Record):
    """The codebook's queue before the first round (worker/cold_start.py): its version in Label
    Studio, how many tasks it ranked, how many codes it pre-checked, when it went live."""

    version: str
    tasks: int
    checked: int
    live_at: str


class ProjectState(_Record):
    schema_version: int = SCHEMA_VERSION
    updated_at: str | None = None
    fast: LaneState = Field(default_factory=LaneState)
    body: BodyLaneState = Field(default_factory=BodyLaneState)
    current_version: str | None = None  # the version Label Studio shows and the queue follows
    # whether its queue head (WRITE_HEAD) is written: all of it, but an older head's places past the
    # coders' reach, which stay served as that head wrote them (studio/writeback.py, `for_coders`)
    complete: bool | None = None
    labeled: int | None = None  # training examples of the last round
    waiting_for: int | None = None  # set while fewer than MIN_ANNOTATIONS_TO_TRAIN examples exist
    last_training_seconds: float | None = None
    monitoring: Monitoring = Field(default_factory=Monitoring)
    rounds: list[RoundRecord] = Field(default_factory=list)
    figures: list[RoundFigures] = Field(default_factory=list)
    progress: Progress | None = None
    pool_encoded: PoolEncoding | None = None  # set by the pool's pre-encoding (worker/jobs/embed.py)
    encoded_in: str | None = None  # the precision the lane that encodes chose (worker/bodies.py)
    codebook_start: CodebookStart | None = None  # COLD_START=codebook's queue until the first round
    code_names: dict[str, str] = Field(default_factory=dict)  # code → as coders see it (set by /setup)

    def lane(self, lane: str) -> LaneState:
        """The record of lane `lane` (a Lane of queue/work.py: "fast" or "body")."""
        return self.fast if lane == "fast" else self.body

    @property
    def busy(self) -> bool:
        """Whether a worker of either lane is at work (its progress is current)."""
        return self.fast.busy or self.body.busy

    def add_round(self, record: RoundRecord) -> None:
        self.rounds = [*self.rounds, record][-ROUND_HISTORY:]

    def add_figures(self, figures: RoundFigures) -> None:
        self.figures = [*self.figures, figures][-FIGURE_HISTORY:]

    def link_run(self, version: str, run: str) -> None:
        """Record the MLflow run of `version`'s figures (written after the round went live)."""
        for figures in reversed(self.figures):
            if figures.version == version:
                figures.mlflow_run = run
                return


def now() -> str:
    return datetime.now(UTC).isoformat()


class StateStore:
    """Reads and changes one project's state file."""

    def __init__(self, project_dir: ProjectDir):
        self.dir = project_dir

    def read(self) -> ProjectState:
        """The state as last written; without a readable file, what the version directories tell."""
        raw = self._read_raw()
        return recovered_from_versions(self.dir) if raw is None else parse_state(raw)

    def update(self, change: Callable[[ProjectState], object]) -> ProjectState:
        """Apply `change` to the current state and write it, holding the project's state lock."""
        self.dir.path.mkdir(parents=True, exist_ok=True)
        with file_lock(self.dir.state_lock):
            state = self.read()
            change(state)
            state.updated_at = now()
            write_atomically(self.dir.state, state.model_dump_json(indent=2))
        return state

    def _read_raw(self) -> Mapping | None:
        try:
            text = self.dir.state.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.error("project %s: cannot read %s (%s)", self.dir.project, self.dir.state, exc)
            return None
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict):
                raise ValueError(f"a JSON {type(raw).__name__}, not an object")
            return raw
        except ValueError as exc:
            self._set_aside(exc)
            return None

    def _set_aside(self, exc: Exception) -> None:
        """A damaged state file is kept for inspection, and the project starts from a fresh state."""
        kept = self.dir.state.with_name(f"state.json.broken-{int(time.time())}")
        log.error(
            "project %s: state.json is DAMAGED (%s); kept as %s, the serving version is recovered from "
            "the version directories",
            self.dir.project,
            exc,
            kept.name,
        )
        with contextlib.suppress(OSError):
            self.dir.state.replace(kept)


def recovered_from_versions(directory: ProjectDir) -> ProjectState:
    """A state rebuilt from the versions on disk: the newest head or full version serves, the newest
    fine-tuned body is the body (the defaults when there is no version)."""
    state, found = ProjectState(), []
    for path in directory.version_dirs():
        with contextlib.suppress(OSError, ValueError):
            found.append((version_number(path.name), json.loads((path / VERSION_METADATA).read_text())))
    for _, metadata in sorted(found, key=lambda item: item[0]):
        if metadata.get("round") == "body":
            state.body.version, state.body.labeled = metadata["version"], int(metadata.get("n_labeled") or 0)
        else:
            state.current_version, state.labeled = metadata["version"], metadata.get("n_labeled")
    if found:
        log.warning(
            "project %s: no readable state.json; serving %s (from the version directories)",
            directory.project,
            state.current_version,
        )
    return state


def parse_state(raw: Mapping) -> ProjectState:
    """A state read from disk, in the current schema or the flat one written before it."""
    if "schema_version" not in raw:
        raw = _from_flat(raw)
    try:
        return ProjectState.model_validate(raw)
    except ValidationError as exc:
        log.error("state.json does not match its schema (%s); using what can be read", exc.errors()[:3])
        known = {k: v for k, v in raw.items() if k in ("current_version", "labeled", "updated_at")}
        return ProjectState.model_validate(known)


# state.json before the schema: one flat object (what the code of 2026-11 wrote).
_FLAT_LANES = {
    "state": ("fast", "status"),
    "last_error": ("fast", "error"),
    "body_state": ("body", "status"),
    "body_error": ("body", "error"),
    "body_version": ("body", "version"),
    "body_labeled": ("body", "labeled"),
    "last_body_seconds": ("body", "seconds"),
}


def _from_flat(raw: Mapping) -> dict:
    nested: dict = {"fast": {}, "body": {}, "monitoring": {}}
    for key, value in raw.items():
        if key in _FLAT_LANES:
            lane, field = _FLAT_LANES[key]
            if value is not None:
                nested[lane][field] = value
        elif key in Monitoring.model_fields:
            nested["monitoring"][key] = value
        else:
            nested[key] = value
    return nested
