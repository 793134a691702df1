"""glibc malloc inside a worker: freed memory handed back, and room for encoding batches.

Workers start with a small fixed mmap threshold (queue/scheduler.py: MALLOC_MMAP_THRESHOLD_), which
keeps a fine-tuning's peak 0.4 GB lower. Encoding pays for it: every batch's large buffers are
mapped and unmapped again, and bfloat16 encoding ran at 47 instead of 69 segments/s (the production
model's shape, 2 threads). So encoding lifts the threshold for its duration and trims afterwards.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
from collections.abc import Iterator

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
ENCODING_MMAP_THRESHOLD = 8 * 2**20  # encoding batches stay in the heap (+0.07 GB measured)


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return None


def release_memory() -> None:
    """Hand memory freed after training or encoding back to the system (glibc keeps it otherwise)."""
    gc.collect()
    libc = _libc()
    with contextlib.suppress(AttributeError):
        if libc is not None:
            libc.malloc_trim(0)


@contextlib.contextmanager
def encoding_allocations() -> Iterator[None]:
    """While encoding, a larger mmap threshold than the worker's; afterwards its own again, trimmed.

    Only when the environment set a smaller fixed threshold: glibc's own (dynamic) one needs no help."""
    configured = os.environ.get("MALLOC_MMAP_THRESHOLD_", "")
    libc = _libc()
    if libc is None or not configured.isdigit() or int(configured) >= ENCODING_MMAP_THRESHOLD:
        yield
        return
    libc.mallopt(M_MMAP_THRESHOLD, ENCODING_MMAP_THRESHOLD)
    try:
        yield
    finally:
        libc.mallopt(M_MMAP_THRESHOLD, int(configured))
        release_memory()
