"""Model versions on disk: ``MODEL_DIR/<project>/<version>/``.

A version directory holds the model files and ``version.json`` (codes, config, number of labeled
segments, training seconds, creation time). It is written under a hidden temporary name and
renamed into place only when complete (and on disk), so a crash mid-save never leaves a version
that looks loadable, and several worker processes see the same versions.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from backend.domain.versions import version_name, version_number
from backend.learning.base import CodingModel
from backend.learning.factories import load_model
from backend.storage.atomic import publish_directory
from backend.storage.cleanup import remove_orphans
from backend.storage.layout import VERSION_METADATA, ProjectDir, StoreLayout
from backend.storage.ranked_pool import RankedPool, read_ranked_pool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelVersion:
    """A complete, loadable model version."""

    project: str
    name: str
    path: Path
    metadata: dict

    @property
    def number(self) -> int:
        return version_number(self.name)

    @property
    def round(self) -> str | None:
        """What made it: 'head' (refit on a body), 'body' (fine-tuned) or 'full'."""
        return self.metadata.get("round")


class ModelStore:
    """Saves, lists, loads and prunes the model versions of every project under one root."""

    def __init__(self, root: Path, keep: int = 2):
        self.layout = StoreLayout(Path(root))
        self.keep = keep

    @property
    def root(self) -> Path:
        return Path(self.layout.root)

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
        directory = self._dir(project)
        directory.path.mkdir(parents=True, exist_ok=True)
        partial = directory.new_partial()
        try:
            model.save(partial)
            while True:
                created = datetime.now(UTC)
                name = version_name(self._next_number(directory), created)
                full = {**metadata, "version": name, "created_at": created.isoformat(), "codes": model.codes}
                (partial / VERSION_METADATA).write_text(json.dumps(full, indent=2, default=str))
                try:
                    publish_directory(partial, directory.version(name))
                    break
                except OSError:  # another process took this number first: take the next one
                    continue
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        version = ModelVersion(str(project), name, directory.version(name), full)
        log.info("saved model version %s of project %s", name, project)
        self.prune(project, keep_also)
        return version

    def versions(self, project: str) -> list[ModelVersion]:
        """Complete versions of a project, oldest first."""
        found = []
        for path in self._dir(project).version_dirs():
            try:
                metadata = json.loads((path / VERSION_METADATA).read_text())
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

    def has(self, project: str, name: str | None) -> bool:
        return bool(name) and any(version.name == name for version in self.versions(project))

    def ranked_pool(self, project: str, name: str | None) -> RankedPool | None:
        """The pool a version ranked, with its decisions (None when the version or its pool is gone)."""
        return read_ranked_pool(self.get(project, name).path) if self.has(project, name) else None

    def load(self, version: ModelVersion, device: str = "cpu") -> CodingModel:
        return load_model(version.path, device=device)

    def discard(self, version: ModelVersion) -> None:
        """Delete a version that never served."""
        shutil.rmtree(version.path, ignore_errors=True)

    def projects(self) -> list[str]:
        return self.layout.projects()

    def prune(self, project: str, keep_also: Iterable[str] = ()) -> list[str]:
        """Delete all but the newest `keep` versions, and partial saves older than an hour.

        Versions named in `keep_also` (e.g. the one serving), a version whose body a kept version
        uses (``metadata["body"]``), and the newest fine-tuned body stay as well.
        """
        versions = self.versions(project)
        keep_also = set(keep_also)
        kept = versions[-self.keep :] + [v for v in versions if v.name in keep_also]
        needed = {version.metadata.get("body") for version in kept} | keep_also
        bodies = [version.name for version in versions if version.round == "body"]
        needed |= set(bodies[-1:])
        removed = [version.name for version in versions[: -self.keep] if version.name not in needed]
        for name in removed:
            shutil.rmtree(self._dir(project).version(name), ignore_errors=True)
        remove_orphans(self._dir(project).path)
        if removed:
            log.info("pruned versions %s of project %s", ", ".join(removed), project)
        return removed

    def _next_number(self, directory: ProjectDir) -> int:
        taken = [version_number(p.name) for p in directory.path.iterdir()]
        return max([0, *taken]) + 1

    def _dir(self, project: str) -> ProjectDir:
        return self.layout.project(project)
