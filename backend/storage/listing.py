"""The kept listing of a project's unlabeled tasks: ``MODEL_DIR/<project>/pool.json``.

Listing every task of a large project is slow for Label Studio, so the worker keeps the last
listing here (see worker/pool.py for when it lists again). Two lanes write it: the body lane
replaces the listing (a minute on a busy server) while the fast lane may add imported tasks. Writes
hold a lock, and a new listing keeps what was added while it was being fetched. A reader keeps the
listing it parsed while the file stays the same (every write replaces it): a worker's rounds parse
it once, not once per annotation (100,000 tasks: a JSON file of tens of megabytes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from backend.domain.tasks import Task
from backend.storage.atomic import write_atomically, write_identity
from backend.storage.layout import ProjectDir
from backend.storage.locks import file_lock


@dataclass
class Listing:
    """Unlabeled tasks (id → data) as listed at `listed_at`, plus tasks added since (id → when)."""

    tasks: dict[int, dict]
    listed_at: float
    added_at: dict[int, float] = field(default_factory=dict)

    @property
    def age(self) -> float:
        """Seconds since the listing (whatever was added since)."""
        return time.time() - self.listed_at


class PoolListing:
    def __init__(self, project_dir: ProjectDir):
        self.path = project_dir.pool_listing
        self.lock = project_dir.pool_lock
        self._parsed: tuple[tuple[int, int, int], Listing] | None = None  # the file (inode, mtime, size)

    def read(self) -> Listing | None:
        """The kept listing (not to be changed: it is shared by this reader's calls); None when there
        is none (or it is in an older format: list afresh)."""
        identity = self._identity()
        if identity is None:
            return None
        if self._parsed is None or self._parsed[0] != identity:
            listing = self._parse()
            self._parsed = None if listing is None else (identity, listing)
        return None if self._parsed is None else self._parsed[1]

    def _identity(self) -> tuple[int, int, int] | None:
        return write_identity(self.path)

    def _parse(self) -> Listing | None:
        try:
            kept = json.loads(self.path.read_text())
            return Listing(
                {int(i): data for i, data in kept["tasks"].items()},
                float(kept["listed_at"]),
                {int(i): float(t) for i, t in kept["added_at"].items()},
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def replace(self, listed: dict[int, dict], listed_at: float) -> Listing:
        """Keep a new listing begun at `listed_at`, with the tasks added since then."""
        with file_lock(self.lock):
            kept = self._parse()
            late = {} if kept is None else {i: t for i, t in kept.added_at.items() if t >= listed_at}
            listing = Listing({**listed, **{i: kept.tasks[i] for i in late}}, listed_at, late)
            self._write(listing)
        return listing

    def add(self, tasks: Iterable[Task]) -> None:
        """Tasks imported since the listing (a round for new tasks saw them)."""
        with file_lock(self.lock):
            listing = self._parse()  # changed here: never the listing `read` shares
            if listing is not None:
                now = time.time()
                for task in tasks:
                    listing.tasks[task.id], listing.added_at[task.id] = task.data, now
                self._write(listing)

    def forget(self) -> None:
        """Drop the listing (e.g. Label Studio refused a prediction for a task that is gone)."""
        self.path.unlink(missing_ok=True)

    def _write(self, listing: Listing) -> None:
        """Write under the lock (so no other write comes between it and this reader's note of it)."""
        write_atomically(
            self.path,
            json.dumps(
                {"listed_at": listing.listed_at, "tasks": listing.tasks, "added_at": listing.added_at}
            ),
        )
        identity = self._identity()
        self._parsed = None if identity is None else (identity, listing)
