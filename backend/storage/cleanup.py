"""Removing what a crash left half-written: files and version directories that were never renamed
into place (storage/atomic.py writes beside the target first)."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

log = logging.getLogger(__name__)
ORPHAN_SECONDS = 3600  # no write takes this long: a partial this old belongs to no one any more


def is_partial(name: str) -> bool:
    """A file or directory being written: ``.<name>.<id>.partial`` or a version's ``.partial-<id>``."""
    return name.startswith(".") and (name.endswith(".partial") or name.startswith(".partial-"))


def remove_orphans(directory: Path, older_than: float = ORPHAN_SECONDS) -> int:
    """Delete partial files and directories under `directory` older than `older_than` seconds."""
    removed, now = 0, time.time()
    for parent, dirs, files in os.walk(directory):
        for name in [*dirs, *files]:
            path = Path(parent) / name
            if not is_partial(name):
                continue
            try:
                if now - path.lstat().st_mtime <= older_than:
                    continue
                if path.is_dir():
                    shutil.rmtree(path)
                    dirs.remove(name)
                else:
                    path.unlink()
                removed += 1
            except OSError:
                continue  # gone meanwhile, or not ours to delete
    if removed:
        log.info("removed %d half-written file(s) a crash left under %s", removed, directory)
    return removed
