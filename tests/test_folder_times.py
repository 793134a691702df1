"""The per-folder time table that ends every run (tests/folder_times.py, tests/conftest.py)."""

from types import SimpleNamespace

from tests.conftest import pytest_terminal_summary
from tests.folder_times import clock, folder_of, folder_table, seconds_per_folder, timings_of


def report(nodeid: str, when: str, duration: float) -> SimpleNamespace:
    return SimpleNamespace(nodeid=nodeid, when=when, duration=duration)


def test_a_tests_folder_is_the_first_folder_below_tests():
    assert folder_of("tests/worker/test_jobs.py::test_round[1-x/y]") == "tests/worker"
    assert folder_of("tests/e2e/deep/test_b.py::test_b") == "tests/e2e"
    assert folder_of("tests/test_architecture.py::test_x") == "tests"


def test_setup_call_and_teardown_of_every_test_add_up_per_folder_slowest_first():
    stats = {
        "passed": [
            report("tests/worker/test_a.py::t", "call", 2.0),
            report("tests/e2e/test_b.py::t", "call", 5),
        ],
        "": [
            report("tests/worker/test_a.py::t", "setup", 0.5),
            report("tests/worker/test_a.py::t", "teardown", 1),
        ],
        "failed": [report("tests/test_c.py::t", "call", 0.25)],
        "warnings": [SimpleNamespace(message="no timing")],
    }
    totals = seconds_per_folder(timings_of(stats))
    assert totals == {"tests/e2e": 5.0, "tests/worker": 3.5, "tests": 0.25}
    assert list(totals) == ["tests/e2e", "tests/worker", "tests"]


def test_the_table_gives_minutes_seconds_and_shares_then_the_total():
    assert folder_table({"tests/e2e": 90.0, "tests/worker": 30.0}) == [
        "tests/e2e        1:30.0   75%",
        "tests/worker     0:30.0   25%",
        "total            2:00.0  100%",
    ]


def test_a_minute_that_rounds_up_is_the_next_minute():
    assert [clock(seconds) for seconds in (479.96, 59.94, 0.0, 3600.0)] == [
        "8:00.0",
        "0:59.9",
        "0:00.0",
        "60:00.0",
    ]


def test_the_hook_prints_the_table_at_the_end_of_a_run():
    lines = []
    reporter = SimpleNamespace(
        stats={"passed": [report("tests/cli/test_cli.py::t", "call", 1.5)]},
        write_sep=lambda sep, title: lines.append(title),
        write_line=lines.append,
    )
    pytest_terminal_summary(reporter)
    assert lines == [
        "test suite time per folder (setup + call + teardown)",
        "tests/cli     0:01.5  100%",
        "total         0:01.5  100%",
    ]
