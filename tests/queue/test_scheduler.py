"""Background work across real processes: one round at a time per project and lane, bursts coalesce,
and a worker that dies is recorded."""

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from backend.queue.files import FileQueue
from backend.queue.runner import Lingering, Turns, work_off
from backend.queue.scheduler import Scheduler, child_env
from backend.queue.slots import SLOT_ENV
from backend.queue.work import Lane, WorkKind
from backend.storage.layout import ProjectDir
from backend.storage.state import LaneStatus, StateStore
from tests.helpers import wait_for

STUB = str(Path(__file__).parent / "round_stub.py")
TRAIN, PREDICT, BODY = WorkKind.TRAIN, WorkKind.PREDICT, WorkKind.BODY


def rounds(log_file: Path) -> list[tuple[str, float, float]]:
    lines = log_file.read_text().split() if log_file.exists() else []
    events = list(zip(lines[0::3], lines[1::3], map(float, lines[2::3]), strict=True))
    starts = [(kind, t) for what, kind, t in events if what == "start"]
    ends = [t for what, _, t in events if what == "end"]
    return [(kind, start, end) for (kind, start), end in zip(starts, ends, strict=False)]


def spawns(log_file: Path) -> int:
    spawned = log_file.with_suffix(".spawns")
    return len(spawned.read_text().split()) if spawned.exists() else 0


def wait_until_idle(scheduler: Scheduler, *projects: str, timeout: float = 60) -> None:
    """Until no request waits and no worker this scheduler started is alive."""

    def idle():
        return not scheduler.running() and not any(scheduler.pending(p) for p in projects)

    wait_for(idle, timeout, "the workers to finish", interval=0.1)


def make_scheduler(tmp_path: Path, seconds: float) -> tuple[Scheduler, Path]:
    log_file = tmp_path / "rounds.log"
    command = [sys.executable, STUB, str(tmp_path), str(log_file), str(seconds)]
    return Scheduler(tmp_path, command=command), log_file


def states(tmp_path: Path, project: str) -> StateStore:
    return StateStore(ProjectDir(tmp_path, project))


def failed_fast_lane(tmp_path: Path, project: str):
    """The project's state once its fast lane is recorded failed."""
    return wait_for(
        lambda: (s := states(tmp_path, project).read()).fast.status is LaneStatus.FAILED and s,
        30,
        f"project {project}'s fast lane to be recorded failed",
    )


def test_a_burst_during_a_round_coalesces_into_one_follow_up(tmp_path):
    scheduler, log_file = make_scheduler(tmp_path, seconds=2.0)
    scheduler.request("1", TRAIN)
    wait_for(log_file.exists, 30, "the first round to start", interval=0.05)
    for _ in range(8):  # eight annotations arrive while the first round runs
        scheduler.request("1", TRAIN)
    wait_until_idle(scheduler, "1")
    done = rounds(log_file)
    assert len(done) == 2, done
    assert done[0][2] <= done[1][1], "rounds overlapped"


def test_a_burst_before_the_child_is_up_starts_one_process(tmp_path, monkeypatch):
    monkeypatch.setenv("STUB_STARTUP_SECONDS", "1.5")  # a real child imports torch first
    scheduler, log_file = make_scheduler(tmp_path, seconds=0.5)
    for _ in range(10):  # ten annotations submitted back to back
        scheduler.request("1", TRAIN)
    wait_until_idle(scheduler, "1")
    assert len(rounds(log_file)) == 1 and spawns(log_file) == 1


def test_a_request_the_exiting_child_missed_gets_a_new_child(tmp_path, monkeypatch):
    monkeypatch.setenv("STUB_MISS_FIRST", str(tmp_path / "missed"))  # the first child ends without looking
    scheduler, log_file = make_scheduler(tmp_path, seconds=0.2)
    scheduler.request("1", TRAIN)
    wait_until_idle(scheduler, "1")
    assert spawns(log_file) == 2, "the reaper started a second child for the waiting request"
    assert len(rounds(log_file)) == 1


def test_projects_do_not_wait_for_each_other(tmp_path):
    scheduler, log_file = make_scheduler(tmp_path, seconds=2.0)
    scheduler.request("1", TRAIN)
    scheduler.request("2", TRAIN)
    wait_until_idle(scheduler, "1", "2")
    done = rounds(log_file)
    assert len(done) == 2
    assert max(start for _, start, _ in done) < min(end for _, _, end in done), (
        "projects ran one after another"
    )


def test_a_train_request_goes_first_and_a_predict_request_still_gets_its_round(tmp_path):
    queue = FileQueue(tmp_path)
    for kind in (PREDICT, TRAIN):
        queue.put("4", kind)
    assert queue.take("4", Lane.FAST) == TRAIN
    assert queue.pending("4") == [PREDICT]
    assert queue.take("4", Lane.FAST) == PREDICT
    assert queue.take("4", Lane.FAST) is None


def suicide(signal_or_status: str) -> list[str]:
    return [sys.executable, "-c", f"import os, signal, sys; {signal_or_status}"]


def test_a_killed_training_process_is_reported_as_a_failed_round(tmp_path):
    Scheduler(tmp_path, command=suicide("os.kill(os.getpid(), signal.SIGKILL)")).request("5", TRAIN)
    state = failed_fast_lane(tmp_path, "5")
    assert "killed by signal 9" in state.fast.error and "out of memory" in state.fast.error


def test_a_killed_body_process_is_reported_in_the_body_lane(tmp_path):
    states(tmp_path, "6").update(lambda s: setattr(s.body, "status", LaneStatus.TRAINING))
    Scheduler(tmp_path, command=suicide("os.kill(os.getpid(), signal.SIGKILL)")).request("6", BODY)
    state = wait_for(
        lambda: (s := states(tmp_path, "6").read()).body.status is LaneStatus.FAILED and s,
        30,
        "the failed body round",
    )
    assert state.fast.status is LaneStatus.IDLE, "the fast lane is not to blame"
    assert "killed by signal 9" in state.body.error


@pytest.mark.parametrize("inside_a_round", [True, False])
def test_a_worker_that_exits_with_an_error_is_recorded(tmp_path, inside_a_round):
    if inside_a_round:  # it died before recording its own failure
        states(tmp_path, "7").update(lambda s: setattr(s.fast, "status", LaneStatus.TRAINING))
    scheduler = Scheduler(tmp_path, command=suicide("sys.exit(3)"))
    scheduler.request("7", TRAIN)
    state = failed_fast_lane(tmp_path, "7")
    assert "exited with status 3" in state.fast.error


def test_a_lingering_worker_takes_new_work_and_notices_quiet_spells(tmp_path):
    queue, handled, idle = FileQueue(tmp_path), [], []
    queue.put("8", TRAIN)
    later = threading.Timer(0.6, lambda: queue.put("8", PREDICT))
    later.start()
    done = work_off(
        queue, "8", handled.append, lingering=Lingering(2.0, lambda: idle.append(1), idle_after=1.0)
    )
    assert done == 2 and handled == [TRAIN, PREDICT]
    assert idle == [1], "one quiet spell, one call"


def test_the_lane_shows_at_work_before_its_request_leaves_the_queue(tmp_path):
    """Else `/metrics` could show the lane idle with nothing pending between two rounds: settled,
    to a test on a slow CI, while the next round was about to land a new version."""
    queue, seen = FileQueue(tmp_path), []
    queue.put("5", PREDICT)
    done = work_off(
        queue,
        "5",
        lambda kind: seen.append(("run", kind, queue.pending("5"))),
        begin=lambda kind: seen.append(("begin", kind, queue.pending("5"))),
    )
    assert done == 1 and seen == [("begin", PREDICT, [PREDICT]), ("run", PREDICT, [])]


def test_workers_get_a_memory_friendly_malloc_unless_the_admin_chose_otherwise(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    env = child_env()
    assert env["MALLOC_ARENA_MAX"] == "2"
    assert env["MALLOC_MMAP_THRESHOLD_"] == "65536"


def most_at_once(spans: list[tuple[str, float, float]]) -> int:
    events = sorted([(start, 1) for _, start, _ in spans] + [(end, -1) for _, _, end in spans])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def test_worker_processes_are_capped_and_requests_beyond_the_cap_wait_their_turn(tmp_path, monkeypatch):
    monkeypatch.setenv("STUB_MAX_WORKERS", "2")
    log_file = tmp_path / "rounds.log"
    command = [sys.executable, STUB, str(tmp_path), str(log_file), "1.0"]
    scheduler = Scheduler(tmp_path, max_workers=2, command=command)
    scheduler.start_sweeping(every=0.2)
    for project in ("1", "2", "3", "4", "5"):
        scheduler.request(project, TRAIN)
    assert len(scheduler.running()) == 2, "the other three wait on disk"
    wait_until_idle(scheduler, "1", "2", "3", "4", "5")
    done = rounds(log_file)
    assert len(done) == 5, "nothing is lost"
    assert most_at_once(done) <= 2
    assert spawns(log_file) == 2, "the two processes moved on to the projects that waited"


def test_a_busy_worker_takes_turns_with_a_project_that_waits_in_the_same_process(tmp_path, monkeypatch):
    """At the stress pace a project whose coders never pause held its slot for good, and other
    projects got no round; a turn that ended the process cost the busy project a process start."""
    for name, value in (
        ("STUB_MAX_WORKERS", "1"),
        ("STUB_TURN_SECONDS", "1.0"),
        ("STUB_LINGER_SECONDS", "5"),
    ):
        monkeypatch.setenv(name, value)
    log_file = tmp_path / "rounds.log"
    scheduler = Scheduler(
        tmp_path, max_workers=1, command=[sys.executable, STUB, str(tmp_path), str(log_file), "0.3"]
    )
    scheduler.start_sweeping(every=0.2)
    streaming = threading.Event()

    def coders_of_project_1():  # an annotation every 0.1 s: its lane always has a request
        while not streaming.wait(0.1):
            scheduler.request("1", TRAIN)

    threading.Thread(target=coders_of_project_1, daemon=True).start()
    wait_for(lambda: len(rounds(log_file)) >= 2, 30, "project 1's worker to be busy", interval=0.05)
    scheduler.request("2", TRAIN)  # no slot is free: it waits for project 1's turn to end
    wait_for(lambda: any(kind.startswith("2/") for kind, _, _ in rounds(log_file)), 30, "project 2's round")
    wait_for(lambda: rounds(log_file)[-1][0].startswith("1/"), 30, "project 1's rounds to go on")
    streaming.set()
    wait_until_idle(scheduler, "1", "2")
    assert spawns(log_file) == 1, "one process took turns, its libraries imported once"
    assert most_at_once(rounds(log_file)) == 1


def test_a_worker_in_turn_goes_to_the_lane_that_waited_longest(tmp_path):
    scheduler = Scheduler(tmp_path)
    for project in ("1", "2", "3", "4"):
        scheduler.queue.layout.project(project).path.mkdir(parents=True)
    assert scheduler.next_in_turn() is None, "no lane waits: the worker ends"
    for project, waited in (("1", 20), ("2", 30), ("4", 50)):
        scheduler.queue.put(project, TRAIN)
        marker = scheduler.queue.layout.project(project).marker(TRAIN)
        os.utime(marker, (time.time() - waited,) * 2)
    scheduler.queue.put("4", TRAIN)  # a later request leaves the first one's time
    scheduler.queue.put("3", BODY)
    assert scheduler.next_in_turn() == "4", "the longest wait, fast lanes only"
    scheduler.queue.mark_starting("4", Lane.FAST)
    assert scheduler.next_in_turn() == "2", "not where a worker is on its way"
    with scheduler.queue.hold("2", Lane.FAST):
        assert scheduler.next_in_turn() == "1", "nor where one is at work"


def test_the_death_of_a_worker_that_moved_is_recorded_where_it_was(tmp_path):
    code = "; ".join([
        "import os, signal; from pathlib import Path",
        "from backend.queue.slots import WorkerSlots",
        "from backend.queue.work import Lane",
        "from backend.storage.layout import ProjectDir",
        "from backend.storage.state import LaneStatus, StateStore",
        f"root = Path({str(tmp_path)!r})",
        "WorkerSlots(root, 4).moved(os.getpid(), '4', Lane.FAST)",
        "StateStore(ProjectDir(root, '4')).update(lambda s: setattr(s.fast, 'status', LaneStatus.TRAINING))",
        "os.kill(os.getpid(), signal.SIGKILL)",
    ])  # fmt: skip
    scheduler = Scheduler(tmp_path, command=[sys.executable, "-c", code])
    scheduler.request("3", TRAIN)
    state = failed_fast_lane(tmp_path, "4")
    assert "killed by signal 9" in state.fast.error
    assert states(tmp_path, "3").read().fast.status is LaneStatus.IDLE, "the lane it left is not to blame"


def test_a_lingering_worker_gives_its_slot_to_a_project_that_waits(tmp_path):
    queue = FileQueue(tmp_path)
    queue.put("1", TRAIN)
    queue.put("2", TRAIN)  # waits: the one slot is taken by project 1's lingering worker
    scheduler = Scheduler(tmp_path, max_workers=1)
    held, done = scheduler.slots.take(), []

    def linger_for_ever():
        yielding = lambda: scheduler.others_wait_for_a_slot("1")  # noqa: E731
        done.append(
            work_off(queue, "1", lambda kind: None, lingering=Lingering(float("inf"), turns=Turns(yielding)))
        )

    worker = threading.Thread(target=linger_for_ever, daemon=True)
    worker.start()
    worker.join(timeout=30)
    held.close()
    assert not worker.is_alive() and done == [1], "it stopped lingering instead of holding the slot"


def test_work_killed_mid_round_is_requested_once_more_and_then_left_for_the_next_event(tmp_path):
    """A worker killed while busy (out of memory, a restart) gets its work requested again; when the
    second attempt dies too, the work waits for the next event instead of looping."""
    spawned = tmp_path / "spawned"
    code = "; ".join([
        "import os, signal; from pathlib import Path",
        "from backend.storage.layout import ProjectDir",
        "from backend.queue.work import Lane",
        "from backend.storage.state import LaneStatus, StateStore",
        "from backend.queue.files import FileQueue",
        f"root = Path({str(tmp_path)!r}); open({str(spawned)!r}, 'a').write('x')",
        "FileQueue(root).take('3', Lane.FAST)",  # as a real worker takes the request it works on
        "StateStore(ProjectDir(root, '3')).update(lambda s: setattr(s.fast, 'status', LaneStatus.TRAINING))",
        "os.kill(os.getpid(), signal.SIGKILL)",
    ])  # fmt: skip
    scheduler = Scheduler(tmp_path, command=[sys.executable, "-c", code])
    scheduler.request("3", TRAIN)

    def both_died():
        state = states(tmp_path, "3").read()
        done = spawned.exists() and len(spawned.read_text()) == 2 and not scheduler.running()
        return done and state.fast.status is LaneStatus.FAILED and not scheduler.pending("3") and state

    state = wait_for(both_died, 60, "the first attempt and its one retry to die")
    assert state.fast.retried and "killed by signal 9" in state.fast.error
    assert scheduler.sweep() == 0, "a lane that died twice is not started again by itself"


def test_a_request_whose_round_could_not_even_start_stays_on_disk(tmp_path):
    """A worker that fails outside a round (its state cannot be written on a full disk) puts the
    request back before it dies, so the next worker takes it."""
    queue = FileQueue(tmp_path)
    queue.put("3", TRAIN)

    def full_disk(kind):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        work_off(queue, "3", full_disk)
    assert queue.pending("3") == [TRAIN]


def test_body_rounds_take_at_most_half_the_slots(tmp_path):
    """Fine-tuning takes minutes: with body rounds in all the slots they may take, annotations of
    several projects still get rounds side by side."""
    from backend.queue.slots import WorkerSlots

    slots = WorkerSlots(tmp_path, 4)
    bodies = [slots.take(Lane.BODY), slots.take(Lane.BODY)]
    assert all(bodies) and slots.take(Lane.BODY) is None, "two of the four slots for body rounds"
    fast = [slots.take(Lane.FAST), slots.take(Lane.FAST)]
    assert all(fast) and slots.free() == 0, "the other two for fast rounds"
    assert slots.take(Lane.FAST) is None
    three = WorkerSlots(tmp_path / "three", 3)
    assert three.take(Lane.BODY) is not None and three.take(Lane.BODY) is None, "one of three"
    assert WorkerSlots(tmp_path / "one", 1).take(Lane.BODY) is not None, "a single slot serves both"
    spare = WorkerSlots(tmp_path / "spare", 4)
    taken = [spare.take(Lane.FAST, bodies_wait=True) for _ in range(3)]
    assert [spare.number(slot) for slot in taken[:2]] == [3, 2] and taken[2] is None, "while a body waits"
    assert WorkerSlots(tmp_path / "alone", 1).take(Lane.FAST, bodies_wait=True) is not None, "none other"


def test_fast_lanes_leave_the_body_slots_to_a_body_that_waits(tmp_path):
    slot_file = tmp_path / "slot"
    command = [
        sys.executable,
        "-c",
        f"import os, time; open({str(slot_file)!r}, 'w').write(os.environ['{SLOT_ENV}']); time.sleep(30)",
    ]
    scheduler = Scheduler(tmp_path, max_workers=2, command=command)
    fast_only = scheduler.slots.take(Lane.FAST)
    assert scheduler.slots.number(fast_only) == 1
    scheduler.queue.put("9", BODY)  # waits: say its worker just ended
    scheduler.request("1", TRAIN)
    assert scheduler.running() == [], "the one slot left is the body's"
    scheduler.queue.drop("9")
    scheduler.request("1", TRAIN)
    assert scheduler.running() == [("1", Lane.FAST)]
    assert wait_for(lambda: slot_file.exists() and slot_file.read_text(), 30, "the child's slot") == "0"
    for child in scheduler._children.values():
        child.kill()
    fast_only.close()


@pytest.mark.parametrize("slot, visited", [("1", ["1", "2"]), ("0", ["1"])])
def test_a_worker_in_a_slot_a_waiting_body_may_take_ends_instead_of_moving(
    tmp_path, monkeypatch, slot, visited
):
    monkeypatch.setenv("BACKEND_WORKER_SLOT", slot)
    scheduler, seen = Scheduler(tmp_path, max_workers=2), []
    for project, kind in (("1", TRAIN), ("2", TRAIN), ("3", BODY)):
        scheduler.queue.put(project, kind)

    def work(at, turns):
        seen.append(at)
        scheduler.queue.take(at, Lane.FAST)
        return 0

    assert scheduler.work_in_turn("1", Lane.FAST, work, threading.Event()) == 0
    assert seen == visited


def test_a_worker_whose_work_failed_moves_nowhere(tmp_path):
    scheduler, seen = Scheduler(tmp_path), []
    scheduler.queue.put("1", TRAIN)  # stays: Label Studio could not be reached

    def unreachable(at, turns):
        seen.append(at)
        return 1

    assert scheduler.work_in_turn("1", Lane.FAST, unreachable, threading.Event()) == 1
    assert seen == ["1"], "no loop asking Label Studio again and again"


def test_a_worker_that_dropped_its_project_leaves_no_directory_behind(tmp_path):
    """A webhook for a project Label Studio does not know: its worker removes the directory, and the
    server's reaper must not make it again (it once looked at the lane's lock file)."""
    directory = ProjectDir(tmp_path, "987654").path
    scheduler = Scheduler(
        tmp_path, command=[sys.executable, "-c", f"import shutil; shutil.rmtree({str(directory)!r})"]
    )
    scheduler.request("987654", TRAIN)
    wait_until_idle(scheduler)
    assert not directory.exists()
