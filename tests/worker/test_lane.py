"""A lane's process yields the CPU to Label Studio: the fast lane a little, the body's more."""

import os
import subprocess
import sys

import pytest

from backend.queue.work import Lane


@pytest.mark.parametrize(("lane", "niceness"), [(Lane.FAST, 5), (Lane.BODY, 19)])
def test_a_lanes_process_runs_below_label_studio_and_the_body_below_the_fast_lane(lane, niceness):
    code = (
        "import os; from backend.queue.work import Lane; from backend.worker.lane import lower_priority; "
        f"lower_priority(Lane({lane.value!r})); print(os.getpriority(os.PRIO_PROCESS, 0))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert int(done.stdout) == max(niceness, os.getpriority(os.PRIO_PROCESS, 0))  # the tests' own, if lower


def test_a_process_already_below_stays_there():
    code = (
        "import os; os.nice(12); from backend.queue.work import Lane; "
        "from backend.worker.lane import lower_priority; lower_priority(Lane.FAST); "
        "print(os.getpriority(os.PRIO_PROCESS, 0))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert int(done.stdout) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 12)  # 19: the lowest there is
