"""Sentence embeddings of one body, cached on disk and keyed by the text.

Encoding dominates every round's cost on a CPU (an 11,656-segment pool takes minutes), while a
body changes only when it is fine-tuned. So each body keeps the embeddings of every segment it
has seen under ``<cache dir>/`` as shards (``shard-<n>.npz``: text hashes and vectors, one per
chunk encoded); a restart, a head refit or an unchanged segment costs nothing, a new or edited
segment is encoded once, and an encoding cut short resumes where it stopped. Shards are written
atomically (storage/atomic.py), so readers never see half a shard; one left unreadable anyway is
set aside and its segments encoded again.

A pool is looked up as rows (`rows`) whose embeddings are then taken a chunk at a time
(`matrix_rows`), never copied whole (100,000 segments: 150 MB and seconds a round,
docs/benchmarks.md); the fast lane looks its pool up when its listing or body changes
(worker/pool_features.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from backend.storage.atomic import write_with
from backend.storage.locks import file_lock

log = logging.getLogger(__name__)
ENCODE_CHUNK = 512
LOCK_NAME = ".encoding.lock"


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Embeddings of one body: looked up by text, computed with `encode` when missing."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._rows: dict[str, int] = {}
        self._vectors: list[np.ndarray] = []
        self._loaded_shards: set[str] = set()

    def __len__(self) -> int:
        self._load()
        return len(self._rows)

    def embed(
        self,
        texts: Sequence[str],
        encode: Callable[[list[str]], np.ndarray],
        on_progress: Callable[[int, int], None] | None = None,
        encoding: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> np.ndarray:
        """Embeddings for `texts` in order; only texts never seen by this body are encoded (with
        `on_progress(encoded, to encode)` after each chunk, inside `encoding()`)."""
        return self.matrix_rows(self.rows(texts, encode, on_progress, encoding))

    def rows(
        self,
        texts: Sequence[str],
        encode: Callable[[list[str]], np.ndarray],
        on_progress: Callable[[int, int], None] | None = None,
        encoding: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> np.ndarray:
        """The cache's rows of `texts` in order (for `matrix_rows`), encoding those it lacks first (inside
        `encoding()`, a worker's allocator settings). One pass over the texts when all are cached."""
        self._load()
        found = self._rows
        rows = np.fromiter(
            (found.get(text_key(text), -1) for text in texts), dtype=np.int64, count=len(texts)
        )
        lacking = np.flatnonzero(rows < 0)
        if len(lacking):
            missing = {text_key(texts[i]): texts[i] for i in lacking}
            with encoding():
                self._encode(list(missing.items()), encode, on_progress)
            rows[lacking] = [self._rows[text_key(texts[i])] for i in lacking]
        return rows

    def matrix_rows(self, rows: np.ndarray) -> np.ndarray:
        """The embeddings of `rows` (from `rows`)."""
        return self._matrix()[rows]

    def _encode(self, missing: list[tuple[str, str]], encode: Callable, on_progress: Callable | None) -> None:
        """Encode chunk by chunk, each chunk saved as a shard at once and under the cache's lock.

        So an encoding that is interrupted (a killed worker, a restart) resumes where it stopped,
        and two processes encoding the same texts (the pool's pre-encoding and a round of the fast
        lane) take turns chunk by chunk instead of encoding any text twice.
        """
        started, total = time.perf_counter(), len(missing)
        for start in range(0, total, ENCODE_CHUNK):
            chunk = missing[start : start + ENCODE_CHUNK]
            with file_lock(self.directory / LOCK_NAME):
                self._load()  # another process may have encoded some of them meanwhile
                todo = [(key, text) for key, text in chunk if key not in self._rows]
                if todo:
                    vectors = np.asarray(encode([text for _, text in todo]), dtype=np.float32)
                    self._add([key for key, _ in todo], vectors)
            done = start + len(chunk)
            if on_progress is not None:
                on_progress(done, total)
            if total > ENCODE_CHUNK:
                left = (time.perf_counter() - started) / done * (total - done)
                log.info("encoded %d/%d new segments, about %.0f s left", done, total, left)

    def _matrix(self) -> np.ndarray:
        if len(self._vectors) > 1:
            self._vectors = [np.vstack(self._vectors)]
        return self._vectors[0] if self._vectors else np.zeros((0, 0), dtype=np.float32)

    def _add(self, keys: list[str], vectors: np.ndarray) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"shard-{time.time_ns()}-{os.getpid()}.npz"
        write_with(
            self.directory / name, lambda handle: np.savez(handle, keys=np.asarray(keys), vectors=vectors)
        )
        self._loaded_shards.add(name)
        self._append(keys, vectors)

    def _append(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        offset = len(self._rows)
        fresh = [(key, i) for i, key in enumerate(keys) if key not in self._rows]
        for row, (key, _) in enumerate(fresh):
            self._rows[key] = offset + row
        if fresh:
            self._vectors.append(vectors[[i for _, i in fresh]])

    def _load(self) -> None:
        """Read shards written since the last look (by this or another process)."""
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("shard-*.npz")):
            if path.name in self._loaded_shards:
                continue
            try:
                with np.load(path) as shard:
                    self._append([str(key) for key in shard["keys"]], shard["vectors"])
            except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
                self._set_aside(path, exc)
            self._loaded_shards.add(path.name)

    def _set_aside(self, path: Path, exc: Exception) -> None:
        """An unreadable shard (a crash or a full disk) costs its texts a re-encoding, not every round."""
        log.warning(
            "embedding cache %s: %s is unreadable (%s: %s); its segments will be encoded again",
            self.directory,
            path.name,
            type(exc).__name__,
            exc,
        )
        with contextlib.suppress(OSError):
            path.replace(path.with_name(f"broken-{path.name}"))
