"""A project's blind validation sample and its estimates: ``MODEL_DIR/<project>/validation.json``.

The sample (`coding-backend validate`) is a seeded uniform draw from the segments uncoded at the
time, served without a suggestion and held out of training until the lead releases it; each round
records its serving version's estimates on it (learning/validation.py). :class:`ValidationStore`
is the file's only reader and writer: each change a read-modify-write under the project's
validation lock, written atomically.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend.storage.atomic import write_atomically
from backend.storage.layout import ProjectDir
from backend.storage.locks import file_lock
from backend.storage.state import now

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1


class Estimates(BaseModel):
    """A version's estimates on the coded part of the sample, per code (CodeEstimate.as_dict()), and
    whether the sample was still held out of the training of that version."""

    model_config = ConfigDict(extra="ignore")

    version: str
    computed_at: str
    coded: int  # validation segments coded, the n behind the estimates
    held_out: bool
    codes: dict[str, dict] = Field(default_factory=dict)
    agreement: dict | None = None  # the coders' agreement on the sample (domain/agreement.py)


class ValidationSample(BaseModel):
    """The sample: its tasks (in the order drawn), how it was drawn, how it is served (one validation
    task in `every` of the queue), whether it was released into training, the last estimates."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    schema_version: int = SCHEMA_VERSION
    task_ids: list[int]
    seed: int
    every: int = Field(ge=1)
    drawn_at: str = Field(default_factory=now)
    drawn_from: int  # segments uncoded when it was drawn (the population it is a sample of)
    coded_before: int  # segments coded when it was drawn
    released_at: str | None = None
    estimates: Estimates | None = None

    @property
    def held_out(self) -> frozenset[int]:
        """Tasks the model must not learn from: the sample, until it is released."""
        return frozenset() if self.released_at else frozenset(self.task_ids)


class ValidationStore:
    """Reads and changes one project's validation sample."""

    def __init__(self, project_dir: ProjectDir):
        self.dir = project_dir

    def read(self) -> ValidationSample | None:
        """The sample; None without one (or when the file is damaged: logged, and nothing is held out)."""
        try:
            return ValidationSample.model_validate(json.loads(self.dir.validation.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, ValidationError) as exc:
            log.error("project %s: validation.json cannot be read (%s)", self.dir.project, exc)
            return None

    def held_out(self) -> frozenset[int]:
        sample = self.read()
        return frozenset() if sample is None else sample.held_out

    def replace(self, sample: ValidationSample) -> None:
        """Record a new sample (its estimates start afresh)."""
        self.dir.path.mkdir(parents=True, exist_ok=True)
        with file_lock(self.dir.validation_lock):
            write_atomically(self.dir.validation, sample.model_dump_json(indent=2))

    def update(self, change: Callable[[ValidationSample], object]) -> ValidationSample | None:
        """Apply `change` to the sample and write it; None (nothing written) without a sample."""
        with file_lock(self.dir.validation_lock):
            sample = self.read()
            if sample is None:
                return None
            change(sample)
            write_atomically(self.dir.validation, sample.model_dump_json(indent=2))
        return sample
