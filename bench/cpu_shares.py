"""Where a benchmark's CPU went: the seconds each group of processes used over a phase.

A ratio of Label Studio's latency with and without the backend says how much coders wait; this
says why. With the backend, both cores were 97 % busy at the stress pace against 73 % without
(docs/benchmarks.md): the groups tell Label Studio answering the backend's calls from the
backend's own training and encoding.

A process's CPU time counts its reaped children's (`children_user`, `children_system`): a worker
that starts and ends within the phase is counted in the server that started it. One that started
before the phase and was reaped within it is counted whole (over-counted by what it used before),
and one reaped by a process outside the groups is lost.
"""

from __future__ import annotations

import os

import psutil

GROUPS = {
    "label studio": ("label-studio", "label_studio"),
    "postgresql": ("postgres",),
    "backend worker": ("backend.worker",),
    "backend server": ("backend.cli",),
    "redis": ("redis-server",),
}
Snapshot = dict[int, tuple[str, float]]  # pid -> (group, CPU seconds so far)


def group_of(process: psutil.Process) -> str:
    """The group a process belongs to, by its command line (the benchmark itself by its pid)."""
    if process.pid == os.getpid():
        return "benchmark (coders)"
    try:
        line = " ".join(process.cmdline()) or process.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "other"
    for group, marks in GROUPS.items():
        if any(mark in line for mark in marks):
            return group
    return "other"


def snapshot() -> Snapshot:
    """Each process's group and CPU seconds so far (its reaped children's included)."""
    taken = {}
    for process in psutil.process_iter():
        try:
            times = process.cpu_times()
            used = times.user + times.system + times.children_user + times.children_system
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        taken[process.pid] = (group_of(process), used)
    return taken


def seconds_by_group(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds each group used between two snapshots, most first."""
    used: dict[str, float] = {}
    for pid, (group, seconds) in after.items():
        start = before.get(pid, (group, 0.0))[1]
        used[group] = used.get(group, 0.0) + max(0.0, seconds - start)
    return {group: round(seconds, 1) for group, seconds in sorted(used.items(), key=lambda item: -item[1])}


class Phase:
    """CPU seconds by group, and the machine's idle share, between `start()` and `stop()`."""

    def start(self) -> None:
        self.before, self.idle_before = snapshot(), psutil.cpu_times()

    def stop(self) -> dict:
        after, idle_after = snapshot(), psutil.cpu_times()
        total = sum(idle_after) - sum(self.idle_before)
        idle = idle_after.idle - self.idle_before.idle
        return {
            "cpu_seconds_by_group": seconds_by_group(self.before, after),
            "cpu_idle_share": round(idle / total, 3) if total > 0 else None,
            "cores": psutil.cpu_count(),
        }
