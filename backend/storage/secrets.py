"""The key behind coders' pseudonyms: ``MODEL_DIR/.coder-key``, made once, readable by its owner only."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from backend.domain.coders import CoderNames
from backend.storage.atomic import sync_directory

KEY_FILE = ".coder-key"


def coder_key(root: Path) -> bytes:
    """The key (created at first use; every process of the host, and every restart, reads the same)."""
    path = Path(root) / KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        pass
    Path(root).mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{KEY_FILE}.{os.getpid()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(partial, path)  # fails when another process made the key first: theirs wins
    except FileExistsError:
        pass
    finally:
        partial.unlink(missing_ok=True)
    sync_directory(Path(root))
    return bytes.fromhex(path.read_text().strip())


def coder_names(root: Path, identities: str) -> CoderNames:
    """How coders are shown under CODER_IDENTITIES: pseudonyms (keyed in `root`) or emails."""
    return CoderNames(coder_key(root) if identities == "pseudonym" else None)
