"""The suite's wall time per top-level test folder, printed at the end of every run (tests/conftest.py).

Where the minutes of `make test` go (docs/benchmarks.md, "Test suite time per folder"): each test's
setup, call and teardown, summed per folder (tests/e2e, tests/worker, …; `tests` for the files at
its top).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

PHASES = ("setup", "call", "teardown")


def folder_of(nodeid: str) -> str:
    """`tests/worker/test_jobs.py::test_x[1]` → `tests/worker`; `tests/test_architecture.py::…` → `tests`."""
    parts = nodeid.split("::", 1)[0].split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else "/".join(parts[:-1]) or "."


def seconds_per_folder(timings: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Summed seconds per folder of (node id, seconds) pairs, the slowest folder first."""
    totals: dict[str, float] = defaultdict(float)
    for nodeid, seconds in timings:
        totals[folder_of(nodeid)] += seconds
    return dict(sorted(totals.items(), key=lambda item: (-item[1], item[0])))


def folder_table(totals: dict[str, float]) -> list[str]:
    """The lines of the table: folder, minutes:seconds and share of the whole, then the total."""
    whole = sum(totals.values())
    width = max(len("total"), *(len(folder) for folder in totals))
    rows = [*totals.items(), ("total", whole)]
    return [
        f"{folder:<{width}}  {clock(seconds):>9}  {seconds / (whole or 1):>4.0%}" for folder, seconds in rows
    ]


def clock(seconds: float) -> str:
    """Minutes:seconds to a tenth, rounded once (59.96 s is 1:00.0, never 0:60.0)."""
    minutes, tenths = divmod(round(seconds * 10), 600)
    return f"{minutes}:{tenths / 10:04.1f}"


def timings_of(stats: dict[str, list]) -> list[tuple[str, float]]:
    """(node id, seconds) of every setup, call and teardown a terminal reporter recorded."""
    return [
        (report.nodeid, report.duration)
        for reports in stats.values()
        for report in reports
        if getattr(report, "when", None) in PHASES
    ]
