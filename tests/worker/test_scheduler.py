"""Background work across real processes: one round at a time per project, bursts coalesce."""

import subprocess
import sys
import time
from pathlib import Path

from backend.scheduler import Scheduler, child_env, pending_kinds, read_state, take_marker, update_state

from .helpers import wait_for

STUB = str(Path(__file__).parent / "round_stub.py")


def rounds(log_file: Path) -> list[tuple[str, float, float]]:
    lines = log_file.read_text().split() if log_file.exists() else []
    events = list(zip(lines[0::3], lines[1::3], map(float, lines[2::3]), strict=True))
    starts = [(kind, t) for what, kind, t in events if what == "start"]
    ends = [t for what, _, t in events if what == "end"]
    return [(kind, start, end) for (kind, start), end in zip(starts, ends, strict=False)]


def wait_until_idle(tmp_path: Path, project: str, log_file: Path, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        lines = log_file.read_text().count("\n") if log_file.exists() else 0
        if not pending_kinds(tmp_path, project) and lines % 2 == 0 and lines:
            time.sleep(1.5)  # let a last child notice there is nothing left
            if not pending_kinds(tmp_path, project) and log_file.read_text().count("\n") == lines:
                return
        time.sleep(0.1)
    raise AssertionError("work did not finish")


def make_scheduler(tmp_path: Path, seconds: float) -> tuple[Scheduler, Path]:
    log_file = tmp_path / "rounds.log"
    command = [sys.executable, STUB, str(tmp_path), str(log_file), str(seconds)]
    return Scheduler(tmp_path, command=command), log_file


def test_a_burst_during_a_round_coalesces_into_one_follow_up(tmp_path):
    scheduler, log_file = make_scheduler(tmp_path, seconds=2.0)
    scheduler.request("1", "train")
    while not log_file.exists():
        time.sleep(0.05)
    for _ in range(8):  # eight annotations arrive while the first round runs
        scheduler.request("1", "train")
    wait_until_idle(tmp_path, "1", log_file)
    done = rounds(log_file)
    assert len(done) == 2, done
    assert done[0][2] <= done[1][1], "rounds overlapped"


def test_a_burst_before_the_child_is_up_starts_one_process(tmp_path, monkeypatch):
    monkeypatch.setenv("STUB_STARTUP_SECONDS", "1.5")  # a real child imports torch first
    scheduler, log_file = make_scheduler(tmp_path, seconds=0.5)
    for _ in range(10):  # ten annotations submitted back to back
        scheduler.request("1", "train")
    wait_until_idle(tmp_path, "1", log_file)
    assert len(rounds(log_file)) == 1
    assert len(log_file.with_suffix(".spawns").read_text().split()) == 1


def test_a_request_the_exiting_child_missed_gets_a_new_child(tmp_path):
    scheduler, log_file = make_scheduler(tmp_path, seconds=0.2)
    scheduler.request("1", "train")
    wait_until_idle(tmp_path, "1", log_file)
    child = next(iter(scheduler._children.values()), None)
    if child is not None:
        child.wait()
    (tmp_path / "1" / ".pending-train").touch()  # as if it arrived while the child was exiting
    scheduler._reap("1", "fast", subprocess.Popen([sys.executable, "-c", "pass"]))
    wait_until_idle(tmp_path, "1", log_file)
    assert len(rounds(log_file)) == 2


def test_projects_do_not_wait_for_each_other(tmp_path):
    scheduler, log_file = make_scheduler(tmp_path, seconds=2.0)
    scheduler.request("1", "train")
    scheduler.request("2", "train")
    wait_until_idle(tmp_path, "1", log_file)
    wait_until_idle(tmp_path, "2", log_file)
    done = rounds(log_file)
    assert len(done) == 2
    assert max(start for _, start, _ in done) < min(end for _, _, end in done), (
        "projects ran one after another"
    )


def test_a_train_request_goes_first_and_a_predict_request_still_gets_its_round(tmp_path):
    update_state(tmp_path, "4", state="idle")
    for kind in ("predict", "train"):
        (tmp_path / "4" / f".pending-{kind}").touch()
    assert take_marker(tmp_path, "4") == "train"
    assert pending_kinds(tmp_path, "4") == ["predict"]
    assert take_marker(tmp_path, "4") == "predict"
    assert take_marker(tmp_path, "4") is None


def test_state_is_merged_and_survives_a_reader(tmp_path):
    assert read_state(tmp_path, "7") == {}
    update_state(tmp_path, "7", state="training", labeled=3)
    update_state(tmp_path, "7", state="idle")
    state = read_state(tmp_path, "7")
    assert (state["state"], state["labeled"]) == ("idle", 3)
    assert "updated_at" in state


def test_a_killed_training_process_is_reported_as_a_failed_round(tmp_path):
    suicide = [sys.executable, "-c", "import os, signal, sys; os.kill(os.getpid(), signal.SIGKILL)"]
    Scheduler(tmp_path, command=suicide).request("5", "train")
    wait_for(lambda: read_state(tmp_path, "5").get("state") == "failed", 30, "the failed round")
    state = read_state(tmp_path, "5")
    assert state["state"] == "failed"
    assert "killed by signal 9" in state["last_error"] and "out of memory" in state["last_error"]


def test_a_killed_body_process_is_reported_in_the_body_lane(tmp_path):
    suicide = [sys.executable, "-c", "import os, signal, sys; os.kill(os.getpid(), signal.SIGKILL)"]
    update_state(tmp_path, "6", state="idle", body_state="training")
    Scheduler(tmp_path, command=suicide).request("6", "body")
    wait_for(lambda: read_state(tmp_path, "6").get("body_state") == "failed", 30, "the failed body round")
    state = read_state(tmp_path, "6")
    assert (state["state"], state["body_state"]) == ("idle", "failed"), "the fast lane is not to blame"
    assert "killed by signal 9" in state["body_error"]


def test_a_lingering_worker_takes_new_work_and_notices_quiet_spells(tmp_path):
    import threading

    from backend.scheduler import work_off

    handled, idle = [], []
    (tmp_path / "8").mkdir()
    (tmp_path / "8" / ".pending-train").touch()
    later = threading.Timer(0.6, lambda: (tmp_path / "8" / ".pending-predict").touch())
    later.start()
    rounds = work_off(
        tmp_path, "8", handled.append, linger=2.0, on_idle=lambda: idle.append(1), idle_after=1.0
    )
    assert rounds == 2 and handled == ["train", "predict"]
    assert idle == [1], "one quiet spell, one call"


def test_rounds_from_both_lanes_are_all_kept_up_to_the_limit(tmp_path):
    from backend.scheduler import ROUND_HISTORY

    for number in range(ROUND_HISTORY + 3):
        update_state(tmp_path, "9", add_round={"kind": "body" if number % 2 else "train", "n": number})
    rounds = read_state(tmp_path, "9")["rounds"]
    assert [r["n"] for r in rounds] == list(range(3, ROUND_HISTORY + 3))


def test_workers_get_a_memory_friendly_malloc_unless_the_admin_chose_otherwise(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    env = child_env()
    assert env["MALLOC_ARENA_MAX"] == "2"
    assert env["MALLOC_MMAP_THRESHOLD_"] == "65536"
