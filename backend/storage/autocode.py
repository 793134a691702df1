"""Codes handed over to the model: ``MODEL_DIR/<project>/autocoded.json``.

For each code the lead handed over (`coding-backend autocode`), the model's decision on every
segment no coder had coded, with its provenance: the model version, each segment's probability,
the validation estimate the hand-over rests on and the targets it met. Each version that serves
later re-decides it (worker/autocode.py `redecide`): the provenance then names that version and its
estimate, and `redecided` says what changed; a version whose estimate misses the targets leaves the
decisions as they were and `suspended` says why. Kept here, not in Label
Studio: an annotation there would be read as a coder's label by every round (and by agreement),
so the model would learn from its own decisions; here nothing trains on it, and `--undo` deletes
it without touching Label Studio. :class:`AutoCodeStore` is the file's only reader and writer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend.storage.atomic import write_atomically
from backend.storage.layout import ProjectDir
from backend.storage.locks import file_lock

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1


class Redecided(BaseModel):
    """The last re-decision: by which version, of the decisions of which (`before`), when, and how
    many segments gained or lost the code, left the set because coders coded them or are gone from
    the project, or joined it (new tasks). `held`: the version misses the targets, so the decisions of
    `before` were kept on the segments still uncoded."""

    model_config = ConfigDict(extra="ignore")

    version: str
    before: str
    at: str
    gained: int
    lost: int
    coded: int
    gone: int = 0
    joined: int = 0
    held: bool = False

    def describe(self) -> str:
        """The line the status page, /metrics and `autocode --status` show."""
        if self.held:
            line = (
                f"not re-decided at version {self.version} (suspended): the decisions of {self.before} stay"
            )
        else:
            changed = self.gained + self.lost
            line = f"re-decided at version {self.version}: {changed} changed (+{self.gained} / −{self.lost})"
        line += f", {self.coded} now coded by coders"
        if self.joined:
            line += f", {self.joined} new segment(s) decided"
        return line + (f", {self.gone} no longer in the project" if self.gone else "")


class AutoCoded(BaseModel):
    """One code handed over: the segments (task ids) the model decided, its decision and probability
    for each, and what the hand-over rests on."""

    model_config = ConfigDict(extra="ignore")

    version: str
    decided_at: str
    min_precision: float
    min_recall: float
    estimate: dict  # the code's validation estimate (learning/validation.py CodeEstimate.as_dict())
    task_ids: list[int]
    decisions: list[bool]
    probabilities: list[float]
    handed_version: str | None = None  # the version the lead handed the code over at
    redecided: Redecided | None = None
    coded_since: int = 0  # segments coders coded since the hand-over (they left the set)
    suspended: str | None = None  # why the serving version does not decide the code (None: it does)

    @property
    def positives(self) -> int:
        return sum(self.decisions)


class AutoCodes(BaseModel):
    model_config = ConfigDict(extra="ignore")

    schema_version: int = SCHEMA_VERSION
    codes: dict[str, AutoCoded] = Field(default_factory=dict)


class AutoCodeStore:
    """Reads and changes one project's auto-coded segments."""

    def __init__(self, project_dir: ProjectDir):
        self.dir = project_dir

    def read(self) -> AutoCodes:
        try:
            return AutoCodes.model_validate_json(self.dir.autocoded.read_bytes())
        except FileNotFoundError:
            return AutoCodes()
        except (OSError, ValueError, ValidationError) as exc:
            log.error("project %s: autocoded.json cannot be read (%s)", self.dir.project, exc)
            raise

    def update(self, change: Callable[[AutoCodes], object]) -> AutoCodes:
        self.dir.path.mkdir(parents=True, exist_ok=True)
        with file_lock(self.dir.autocoded_lock):
            codes = self.read()
            change(codes)
            write_atomically(self.dir.autocoded, codes.model_dump_json())
        return codes
