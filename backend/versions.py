"""Model versions on disk: ``MODEL_DIR/<project>/<version>/``.

A version directory holds the model files and ``version.json`` (codes, config, number of
labeled segments, training seconds, creation time). It is written under a hidden temporary
name and renamed into place only when complete, so a crash mid-save never leaves a version
that looks loadable, and several worker processes see the same versions.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from backend.model import CodingModel, load_model

log = logging.getLogger(__name__)

METADATA_FILE = "version.json"
_PROJECT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_VERSION_PATTERN = re.compile(r"^v(\d+)-")
_STALE_PARTIAL_SECONDS = 3600


@dataclass(frozen=True)
class ModelVersion:
    """A complete, loadable model version."""

    project: str
    name: str
    path: Path
    metadata: dict

    @property
    def number(self) -> int:
        return _version_number(self.name)


class ModelStore:
    """Saves, lists, loads and prunes the model versions of every project under one root."""

    def __init__(self, root: Path, keep: int = 2):
        self.root = Path(root)
        self.keep = keep

    def save(
        self,
        project: str,
        model: CodingModel,
        *,
        n_labeled: int,
        training_seconds: float,
        config: dict,
        extra: dict | None = None,
        keep_also: Iterable[str] = (),
    ) -> ModelVersion:
        """Write a new version atomically and return it (older versions beyond `keep` are pruned).

        `config` is recorded as given: pass only settings that are safe to show (no secrets).
        """
        metadata = {
            "kind": model.kind,
            "n_labeled": n_labeled,
            "training_seconds": round(training_seconds, 3),
            "config": config,
            **(extra or {}),
        }
        project_dir = self._project_dir(project)
        project_dir.mkdir(parents=True, exist_ok=True)
        partial = project_dir / f".partial-{uuid.uuid4().hex}"
        try:
            model.save(partial)
            while True:
                number = self._next_number(project)
                created = datetime.now(UTC)
                name = f"v{number}-{created:%Y%m%d%H%M%S}"
                full = {**metadata, "version": name, "created_at": created.isoformat(), "codes": model.codes}
                (partial / METADATA_FILE).write_text(json.dumps(full, indent=2, default=str))
                try:
                    partial.rename(project_dir / name)
                    break
                except OSError:  # another process took this number first: take the next one
                    continue
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        version = ModelVersion(str(project), name, project_dir / name, full)
        log.info("saved model version %s of project %s", name, project)
        self.prune(project, keep_also)
        return version

    def versions(self, project: str) -> list[ModelVersion]:
        """Complete versions of a project, oldest first."""
        project_dir = self._project_dir(project)
        if not project_dir.is_dir():
            return []
        found = []
        for path in project_dir.iterdir():
            if path.name.startswith(".") or not _VERSION_PATTERN.match(path.name):
                continue
            try:
                metadata = json.loads((path / METADATA_FILE).read_text())
            except (OSError, ValueError):
                continue  # incomplete or damaged: never served
            found.append(ModelVersion(str(project), path.name, path, metadata))
        return sorted(found, key=lambda version: version.number)

    def latest(self, project: str) -> ModelVersion | None:
        versions = self.versions(project)
        return versions[-1] if versions else None

    def get(self, project: str, name: str) -> ModelVersion:
        for version in self.versions(project):
            if version.name == name:
                return version
        raise KeyError(f"project {project} has no model version {name!r}")

    def load(self, version: ModelVersion, device: str = "cpu") -> CodingModel:
        return load_model(version.path, device=device)

    def projects(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _PROJECT_PATTERN.match(p.name))

    def prune(self, project: str, keep_also: Iterable[str] = ()) -> list[str]:
        """Delete all but the newest `keep` versions, and partial saves older than an hour.

        Versions named in `keep_also` (e.g. the one serving), a version whose body a kept version
        uses (``metadata["body"]``), and the newest fine-tuned body stay as well.
        """
        versions = self.versions(project)
        kept = [version for version in versions[-self.keep :]] + [
            v for v in versions if v.name in set(keep_also)
        ]
        needed = {version.metadata.get("body") for version in kept} | set(keep_also)
        bodies = [version.name for version in versions if version.metadata.get("round") == "body"]
        needed |= set(bodies[-1:])
        removed = [version.name for version in versions[: -self.keep] if version.name not in needed]
        for name in removed:
            shutil.rmtree(self._project_dir(project) / name, ignore_errors=True)
        for partial in self._project_dir(project).glob(".partial-*"):
            if time.time() - partial.stat().st_mtime > _STALE_PARTIAL_SECONDS:
                shutil.rmtree(partial, ignore_errors=True)
        if removed:
            log.info("pruned versions %s of project %s", ", ".join(removed), project)
        return removed

    def _next_number(self, project: str) -> int:
        taken = [_version_number(p.name) for p in self._project_dir(project).iterdir()]
        return max([0, *taken]) + 1

    def _project_dir(self, project: str) -> Path:
        project = str(project)
        if not _PROJECT_PATTERN.match(project):
            raise ValueError(f"invalid project name {project!r}: use letters, digits, '.', '_' or '-'")
        return self.root / project


def _version_number(name: str) -> int:
    match = _VERSION_PATTERN.match(name)
    return int(match.group(1)) if match else 0
