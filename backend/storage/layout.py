"""Where everything lives under MODEL_DIR: the one definition of the directory layout.

::

    MODEL_DIR/
      mlflow.db                      local MLflow store (without MLFLOW_TRACKING_URI)
      .coder-key                     the key of coders' pseudonyms (storage/secrets.py)
      .slots/  .sweeper              the worker-process cap and the one sweeping server (queue/)
      .inbox-lock                    held while a webhook's event is weighed against the inbox caps
      .embeddings/<key>/             embeddings of the base model (shared by projects)
      <project>/                     a Label Studio project id (is_project_id); nothing else is a project
        state.json  .state-lock      the project's state (storage/state.py)
        validation.json  .validation-lock  the blind validation sample, its estimates (storage/validation.py)
        autocoded.json  .autocoded-lock    codes handed over to the model (storage/autocode.py)
        .lock  .lock-body            one lock per lane: held while a worker works it
        .pending-<kind>              requests for work (queue/files.py)
        .starting-<lane>             a worker was started for the lane and is not at work yet
        pool.json  .pool-lock        the kept listing of unlabeled tasks (storage/listing.py)
        predictions.json  .predictions-lock   our prediction's id in Label Studio per task, and
                                     the live tasks with the version that wrote each
                                     (storage/prediction_ids.py)
        suggestions.json  .suggestions-lock   each write of those predictions: when, the codes
                                     suggested (storage/suggestions.py)
        inbox/                       annotations webhooks brought since the last round (storage/inbox.py);
                                     inbox/.dropped: some were not kept, the next round reads everything;
                                     inbox/.taken-by-<id>: the worker process that took them last
        exports/                     the last export per format the status page asked for, and
                                     exports.json .exports-lock: each one's record (storage/exports.py)
        .partial-<id>/               a version being written
        v<n>-<timestamp>/            a model version (storage/versions.py):
          version.json  coding_model.json  head.joblib | setfit/ | transformer/
          pool.npz                   what its round ranked and decided (storage/ranked_pool.py)
          embeddings/                a fine-tuned body's embeddings (storage/embeddings.py)
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from backend.domain.versions import is_numbered
from backend.errors import BackendError

PROJECT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
PROJECT_ID = re.compile(r"[0-9]{1,12}")  # ASCII digits only: "١٢٣" and "９" are not 123 and 9
VERSION_METADATA = "version.json"
VERSION_POOL = "pool.npz"
VERSION_EMBEDDINGS = "embeddings"


class InvalidProjectError(BackendError, ValueError):
    """A project name that cannot name a directory under MODEL_DIR."""


@dataclass(frozen=True)
class ProjectDir:
    """One project's directory and the name of every file in it."""

    root: Path
    project: str

    def __post_init__(self) -> None:
        if not PROJECT_PATTERN.match(str(self.project)):
            raise InvalidProjectError(
                f"invalid project name {self.project!r}: use letters, digits, '.', '_' or '-'"
            )

    @property
    def path(self) -> Path:
        return Path(self.root) / str(self.project)

    @property
    def state(self) -> Path:
        return self.path / "state.json"

    @property
    def state_lock(self) -> Path:
        return self.path / ".state-lock"

    @property
    def validation(self) -> Path:
        return self.path / "validation.json"

    @property
    def validation_lock(self) -> Path:
        return self.path / ".validation-lock"

    @property
    def autocoded(self) -> Path:
        return self.path / "autocoded.json"

    @property
    def autocoded_lock(self) -> Path:
        return self.path / ".autocoded-lock"

    def lane_lock(self, lane: str) -> Path:
        return self.path / (".lock" if lane == "fast" else f".lock-{lane}")

    def marker(self, kind: str) -> Path:
        return self.path / f".pending-{kind}"

    def starting(self, lane: str) -> Path:
        """Touched when a worker is started for the lane, until it holds the lane's lock."""
        return self.path / f".starting-{lane}"

    @property
    def pool_listing(self) -> Path:
        return self.path / "pool.json"

    @property
    def pool_lock(self) -> Path:
        return self.path / ".pool-lock"

    @property
    def lexicon(self) -> Path:
        """The TF-IDF vectorizer of FEATURES=tfidf+embeddings, fitted on the project's segments."""
        return self.path / "lexicon.joblib"

    @property
    def prediction_ids(self) -> Path:
        return self.path / "predictions.json"

    @property
    def prediction_ids_lock(self) -> Path:
        return self.path / ".predictions-lock"

    @property
    def suggestions(self) -> Path:
        return self.path / "suggestions.json"

    @property
    def suggestions_lock(self) -> Path:
        return self.path / ".suggestions-lock"

    @property
    def inbox(self) -> Path:
        return self.path / "inbox"

    @property
    def exports(self) -> Path:
        return self.path / "exports"

    def version(self, name: str) -> Path:
        return self.path / name

    def new_partial(self) -> Path:
        return self.path / f".partial-{uuid.uuid4().hex}"

    def version_dirs(self) -> list[Path]:
        """Directories named like versions (complete or not: see storage/versions.py)."""
        if not self.path.is_dir():
            return []
        return [p for p in self.path.iterdir() if is_numbered(p.name)]


def is_project_id(name: str) -> bool:
    """Whether `name` is a project's directory under MODEL_DIR: a Label Studio project id as the server
    writes it (ASCII digits, no leading zero). MLflow's `mlartifacts`, `.embeddings`, `mlflow.db` and
    whatever else lives there are not projects."""
    return PROJECT_ID.fullmatch(name) is not None and str(int(name)) == name


@dataclass(frozen=True)
class StoreLayout:
    """MODEL_DIR: its projects and the files shared between them."""

    root: Path

    def project(self, project: str) -> ProjectDir:
        return ProjectDir(Path(self.root), str(project))

    def projects(self) -> list[str]:
        root = Path(self.root)
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir() and is_project_id(p.name))

    def base_embeddings(self, model_name: str, max_length: int, precision: str = "fp32") -> Path:
        """The base model's embedding cache, keyed by model, token limit and the precision encoded
        in (shared by projects)."""
        key = f"{model_name}|{max_length}" + ("" if precision == "fp32" else f"|{precision}")
        return Path(self.root) / ".embeddings" / hashlib.sha1(key.encode()).hexdigest()[:16]

    @staticmethod
    def version_embeddings(version_path: Path, precision: str = "fp32") -> Path:
        """A fine-tuned body's embedding cache, inside its version directory."""
        return version_path / (VERSION_EMBEDDINGS + ("" if precision == "fp32" else f"-{precision}"))

    @property
    def inbox_lock(self) -> Path:
        return Path(self.root) / ".inbox-lock"

    @property
    def sweeper_lock(self) -> Path:
        return Path(self.root) / ".sweeper"
