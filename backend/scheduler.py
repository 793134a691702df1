"""Background work across processes: pending markers, one lock per project, state on disk.

The HTTP layer only *requests* work (:meth:`Scheduler.request`): it drops a marker file and
starts a child process (``python -m backend.training PROJECT``) that runs rounds while markers
remain. A non-blocking ``flock`` per project makes sure only one child works on a project at a
time, across every gunicorn worker; events that arrive during a round leave one marker, so they
coalesce into exactly one follow-up round. Training in a child process also means an
out-of-memory kill or a crash never takes a server worker down, and other projects run in
their own children.

Everything other processes must see (state, current version, last error) lives in
``MODEL_DIR/<project>/state.json``, written atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)
LINGER_POLL_SECONDS = 0.2
ROUND_HISTORY = 20

# Two lanes of work per project, each with its own lock, so fine-tuning a body never holds up the
# fast loop: "fast" writes to Label Studio ('train' = a round after annotations, then 'predict' =
# predictions for imported tasks); "body" fine-tunes a SetFit body in the background.
LANES = {"fast": ("train", "predict"), "body": ("body",)}
KINDS = tuple(kind for kinds in LANES.values() for kind in kinds)
# Where each lane records its state and its last error in state.json.
STATUS_FIELDS = {"fast": ("state", "last_error"), "body": ("body_state", "body_error")}


class ProjectFiles:
    """Where one project's coordination files live."""

    def __init__(self, model_dir: Path, project: str):
        self.dir = Path(model_dir) / str(project)
        self.state = self.dir / "state.json"

    def lock(self, lane: str = "fast") -> Path:
        return self.dir / (".lock" if lane == "fast" else f".lock-{lane}")

    def marker(self, kind: str) -> Path:
        return self.dir / f".pending-{kind}"


def read_state(model_dir: Path, project: str) -> dict:
    """The project's state as last written ({} before any work)."""
    try:
        return json.loads(ProjectFiles(model_dir, project).state.read_text())
    except (OSError, ValueError):
        return {}


def update_state(model_dir: Path, project: str, *, add_round: dict | None = None, **fields) -> dict:
    """Merge `fields` into the project's state file atomically (write, then rename); `add_round`
    appends to the round history (the last ROUND_HISTORY are kept).

    Both lanes of a project write it, so the read-merge-write holds an exclusive lock: no
    writer ever loses another's fields or rounds.
    """
    files = ProjectFiles(model_dir, project)
    files.dir.mkdir(parents=True, exist_ok=True)
    with open(files.dir / ".state-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = {**read_state(model_dir, project), **fields, "updated_at": datetime.now(UTC).isoformat()}
        if add_round is not None:
            state["rounds"] = [*state.get("rounds", []), add_round][-ROUND_HISTORY:]
        partial = files.state.with_name(f".state-{os.getpid()}-{threading.get_ident()}.json")
        partial.write_text(json.dumps(state, indent=2, default=str))
        partial.replace(files.state)
    return state


MALLOC_DEFAULTS = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "131072"}


def child_env() -> dict[str, str]:
    """The environment of a worker, with glibc malloc tuned for torch on a CPU (see docs/benchmarks.md).

    Fewer arenas: freed memory is otherwise kept per thread, and a lingering worker would hold it.
    A fixed mmap threshold: glibc otherwise raises it after each large free, so activations and
    encoder batches land in the heap, fragment it and stay resident (−0.4 GB peak in a fine-tuning,
    −0.2 GB while encoding a pool). Either can be overridden in the environment.
    """
    return {**MALLOC_DEFAULTS, **os.environ}


def lane_of(kind: str) -> str:
    for lane, kinds in LANES.items():
        if kind in kinds:
            return lane
    raise ValueError(f"unknown kind of work {kind!r}")


def pending_kinds(model_dir: Path, project: str, lane: str | None = None) -> list[str]:
    files = ProjectFiles(model_dir, project)
    kinds = LANES[lane] if lane else KINDS
    return [kind for kind in kinds if files.marker(kind).exists()]


@contextlib.contextmanager
def project_lock(model_dir: Path, project: str, lane: str = "fast") -> Iterator[bool]:
    """Try to take the project's lock of `lane` without waiting; yields whether we hold it."""
    files = ProjectFiles(model_dir, project)
    files.dir.mkdir(parents=True, exist_ok=True)
    with open(files.lock(lane), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lane_busy(model_dir: Path, project: str, lane: str) -> bool:
    """Whether a worker holds the lane's lock now (the lock, unlike state.json, dies with its holder)."""
    with project_lock(model_dir, project, lane) as free:
        return not free


def take_marker(model_dir: Path, project: str, lane: str = "fast") -> str | None:
    """Remove and return the lane's first pending request in LANES order ('train' before 'predict').

    One at a time: a head refit ranks the pool listing it keeps, which has no imported tasks,
    so a 'predict' request that arrived meanwhile still gets its round.
    """
    files = ProjectFiles(model_dir, project)
    for kind in LANES[lane]:
        with contextlib.suppress(FileNotFoundError):
            files.marker(kind).unlink()
            return kind
    return None


def work_off(
    model_dir: Path,
    project: str,
    handle: Callable[[str], None],
    lane: str = "fast",
    linger: float = 0.0,
    on_idle: Callable[[], None] | None = None,
    idle_after: float = float("inf"),
) -> int:
    """Run `handle(kind)` for the lane's pending requests while we hold its lock; returns rounds run.

    With `linger`, the worker keeps the lock (and whatever `handle` keeps in memory) and polls
    for new requests until it has been idle that many seconds: the next annotation's round
    starts at once, without a new process loading a model. After releasing the lock we look
    again: a request that arrived just as we finished (its own child found the lock still held
    and gave up) is picked up here, not lost.
    """
    rounds = 0
    while pending_kinds(model_dir, project, lane):
        with project_lock(model_dir, project, lane) as held:
            if not held:
                return rounds  # the holder will see the markers
            idle_since, idle_handled = time.monotonic(), False
            while True:
                idle = time.monotonic() - idle_since
                if kind := take_marker(model_dir, project, lane):
                    handle(kind)
                    rounds += 1
                    idle_since, idle_handled = time.monotonic(), False
                elif idle < linger:
                    if on_idle and not idle_handled and idle >= idle_after:
                        idle_handled = True
                        on_idle()
                    time.sleep(LINGER_POLL_SECONDS)
                else:
                    break
    return rounds


class Scheduler:
    """Requests background work for projects and watches the child processes that do it."""

    def __init__(self, model_dir: Path, command: list[str] | None = None):
        self.model_dir = Path(model_dir)
        self.command = command or [sys.executable, "-m", "backend.training"]
        self._children: dict[tuple[str, str], subprocess.Popen] = {}
        self._guard = threading.Lock()

    def request(self, project: str, kind: str) -> None:
        """Leave a marker and make sure a child process works it off. Returns at once."""
        lane = lane_of(kind)
        files = ProjectFiles(self.model_dir, project)
        files.dir.mkdir(parents=True, exist_ok=True)
        files.marker(kind).touch()
        self._start_worker(project, lane)

    def _start_worker(self, project: str, lane: str) -> None:
        """Start a child for the lane unless one is already on its way or at work.

        A child needs seconds to import its libraries before it takes the lane's lock; without
        remembering the children we started, a burst of webhooks in those seconds would start
        one process each (measured: ten at 0.25 GB apiece), all but one of them to give up.
        """
        with self._guard:
            running = self._children.get((project, lane))
            if running is not None and running.poll() is None:
                return  # it takes the marker, or its reaper starts another child for it
            with project_lock(self.model_dir, project, lane) as free:
                if not free:
                    return  # a child of another server worker holds the lane and will find it
            child = subprocess.Popen(
                [*self.command, str(project), lane], stdin=subprocess.DEVNULL, env=child_env()
            )
            self._children[(project, lane)] = child
        threading.Thread(target=self._reap, args=(project, lane, child), daemon=True).start()

    def _reap(self, project: str, lane: str, child: subprocess.Popen) -> None:
        """Record a child that died without saying why (killed for memory, crashed); after a clean
        exit, start another if a request arrived too late for it to see."""
        started = time.monotonic()
        code = child.wait()
        with self._guard:
            if self._children.get((project, lane)) is child:
                del self._children[(project, lane)]
        if code == 0 and pending_kinds(self.model_dir, project, lane):
            self._start_worker(project, lane)
        if code < 0:
            reason = (
                f"the training process was killed by signal {-code} after {time.monotonic() - started:.0f} s"
            )
            if -code == 9:
                reason += " (out of memory?)"
            log.error("project %s: %s", project, reason)
            status, error = STATUS_FIELDS[lane]
            update_state(self.model_dir, project, **{status: "failed", error: reason})
