"""Writing a model version's predictions to Label Studio: one prediction per task, updated in place,
under one served name.

Coders need only the head of the queue to be fresh, and every write to Label Studio holds its
database (SQLite: for everyone) while it runs: an import call holds it for seconds (7.6–10.5 s on
11,656 tasks, whether it carries 1 prediction or 100; a minute on 100,000), a single create or
PATCH for a tenth of a second (docs/benchmarks.md, "Label Studio's write paths"). So a version
writes only its queue head, one call per task, and never deletes a version. The exception: when
Label Studio recounts only the tasks an import writes (its flag
`fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short`, WRITE_BY_IMPORT: 0.15 s
for 100 predictions on 11,656 tasks), the head's tasks that hold no prediction of ours yet go in one
import call per IMPORT_CHUNK (`write_steps`): a head written one call at a time supplied 1.6 tasks a
second where twenty fast coders took 2.2 (load run 6):

- each task holds at most one prediction of ours, updated in place (studio/task_predictions.py);
- every prediction written for a queue head holds one name, `LIVE` (domain/versions.py), the
  project's `model_version` for good. Label Studio's Uncertainty sampling serves only unlabeled
  tasks with a current prediction, and answers a coder "no more tasks" when all of those are locked
  by other coders or coded: a new name per version emptied that set at every switch and a fast team
  drained it (docs/benchmarks.md, "issue 36's SQLite runs": 1,748 of 3,435 `/next`). With one
  name a new version only adds to the set: the previous head stays served until replaced;
- Label Studio serves the current tasks by score, lowest first; each version's scores lie in a band
  of its own (`queue_score`), below every older version's: a new head is served before any task an
  older head left live, and those stay live, served once the new head is locked or coded. Renaming
  each of them out of the served set cost a call per leaver, about as many as the head's writes:
  load run 5 (docs/benchmarks.md) showed rounds of 46 s under twenty fast coders, who drained the
  current set between two rounds (60 % of `/next` answered "no more tasks"). So a round writes only
  its head; a task coded meanwhile is forgotten from the live set, with no call. The map records
  which tasks are live and which version wrote each (`live`: exports tell the current version's
  suggestions from older ones). The rest of the pool is never written: `/predict` and the
  version's ranked pool (storage/ranked_pool.py) hold it. (Tasks a round before these bands left
  live hold scores below every band, so they are served first until coded: at most one head's
  worth, once);
- Label Studio serves a coder the task locked to them (served earlier, not yet annotated) before
  any other, and shows its pre-annotation only if it is current: as no round renames a live task,
  a locked one stays current whether or not the new head holds it.

A version is written in two steps, each a function that returns what the next takes:

1. `go_live`: the `first` predictions (the most informative) are written and, when the project does
   not serve `LIVE` yet (its first version, or a project written by older code, whose differently
   named predictions then stop being current), the project is switched to it; it returns the `Live`
   version;
2. `write_rest`: the rest of the queue head, up to `head` predictions, is written one call each
   (or imported, `write_steps`), the tasks not served yet first, then the places an older
   version's band serves already within the coders' reach (`adding_first`: coders take fewer
   before the next version comes), stopping as soon as newer work waits (its own version will be
   written head first), but not before `floor` are written or every task not served yet is (a
   rewrite adds nothing coders can be served); the tasks coded meanwhile leave the live set
   (`forget`).

A queue that replaces another of the same band (the codebook's, when the codebook changed) renames
the live tasks outside its head (`demote`), one call each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, replace

from backend.domain.versions import LIVE, version_number
from backend.studio.task_predictions import TaskPredictions

log = logging.getLogger(__name__)
# Predictions per import call: a queue head's worth (WRITE_HEAD's default), which Label Studio with
# the flag imports in 0.15 s on 11,656 tasks (docs/benchmarks.md, "Label Studio's write paths").
IMPORT_CHUNK = 100
# The most a head grows to when its new tasks are imported: ten import calls.
MAX_IMPORTED_HEAD = 10 * IMPORT_CHUNK


@dataclass(frozen=True)
class WritePlan:
    """How a version is written: `first` predictions before the switch, the queue `head` (up to
    that many, the first included) one by one after it, of which the first `floor` even when newer
    work waits; an older head's tasks are rewritten only within its first `reach` places (None: the
    whole head).

    Label Studio serves only tasks with a current prediction while any task has one, and answers a
    coder "no more tasks" when all of those are locked by other coders: a version must go live with
    more current tasks than its coders hold, and add more before the next one takes its place."""

    first: int = 0
    head: int = 0
    floor: int = 0
    reach: int | None = None


def for_coders(plan: WritePlan, floor: int, by_import: bool, coders_moved: bool = True) -> WritePlan:
    """The plan of a version's rest, given the coders' `floor`: within the head, which, when new
    tasks are imported, grows to the floor (up to MAX_IMPORTED_HEAD); the floor is the reach too,
    unless coders coded no task since the last version (`coders_moved` False: after a validation
    draw, a codebook change, a new body, new tasks), when the whole head is rewritten in its order.

    Twenty fast coders took 65-160 tasks while a round ran, more than a head of 100 adds, and met
    "no more tasks" between rounds (docs/benchmarks.md, load, 2026-12-07). One call per task made a
    floor beyond the head hold a lane for 8 minutes; an import call writes 100 in a fraction of a
    second. Coders are served no deeper than the floor before the next version writes its own, so
    rewriting an older head's places beyond it only cost Label Studio's time: at a human pace the
    backend sent 5,611 such rewrites in ten minutes against about 500 submits (docs/benchmarks.md)."""
    if by_import:
        plan = replace(plan, head=max(plan.head, min(floor, MAX_IMPORTED_HEAD)))
    floor = min(plan.head, floor)
    return replace(plan, floor=floor, reach=floor if coders_moved else None)


@dataclass(frozen=True)
class Live:
    """A version Label Studio serves, with its predictions (in the order they are written: the queue's
    first places first) and how many of them are written."""

    project: int
    version: str
    predictions: Sequence[dict]
    written: int

    @property
    def total(self) -> int:
        return len(self.predictions)

    def head(self, plan: WritePlan) -> Sequence[dict]:
        """The predictions of its queue head as `plan` sizes it (the first ones at least)."""
        return self.predictions[: min(max(plan.head, plan.first), self.total)]

    def head_tasks(self, plan: WritePlan) -> set[int]:
        """The tasks of its queue head: those that stay live (`demote`)."""
        return {int(prediction["task"]) for prediction in self.head(plan)}


def go_live(target: TaskPredictions, version: str, predictions: Sequence[dict], first: int) -> Live:
    """Write the `first` predictions (one call each, or imported: `write_steps`), and switch the
    project to `LIVE` unless it serves it already.

    Raises IncompleteImport when Label Studio refuses one of them: the ones written before it hold
    the served name then, for the caller to `withdraw`."""
    try:
        for step in write_steps(target, predictions[:first]):
            write_step(target, step)
    finally:
        target.save()
    if target.studio.served_version(target.project) != LIVE:
        target.studio.serve_version(target.project, LIVE)
    written = min(first, len(predictions))
    log.info("project %s: %s is live with the %d most informative tasks", target.project, version, written)
    return Live(target.project, version, predictions, written)


def already_live(project: int, version: str, predictions: Sequence[dict]) -> Live:
    """More predictions of the version Label Studio serves already (tasks imported since its round)."""
    return Live(project, version, predictions, 0)


def write_rest(
    target: TaskPredictions,
    live: Live,
    plan: WritePlan,
    interrupted: Callable[[], bool] = lambda: False,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
    others_wait: Callable[[], bool] = lambda: False,
) -> bool:
    """Write the rest of `live`'s queue head; returns whether all of it was written.

    `interrupted()` is asked before each call once `plan.floor` are written (newer work of the
    project waits: stop), `others_wait()` once half the head is (another project's round waits for
    this worker's slot: stop, and leave the coders enough to go on with while this project's next
    round waits for a slot in turn), `on_progress(written, head)` told after each."""
    head = live.head(plan)
    written = live.written
    adding, rewriting = adding_first(target, live, head, plan.reach)
    plan = replace(plan, floor=min(plan.floor, written + len(adding)))  # a rewrite adds no task to serve
    on_progress(min(written, len(head)), len(head))
    try:
        for step in write_steps(target, adding + rewriting):
            reason = stop_reason(written, plan, len(head), interrupted, others_wait)
            if reason:
                log.info(
                    "project %s: %s; %s stops after %d of its %d head predictions",
                    live.project,
                    reason,
                    live.version,
                    written,
                    len(head),
                )
                return False
            write_step(target, step)
            written += len(step)
            on_progress(written, len(head))
    finally:
        target.save()
    return True


def write_steps(target: TaskPredictions, predictions: Sequence[dict]) -> Iterator[list[dict]]:
    """`predictions` cut into the calls that write them, in order: a run of two or more that
    `target` imports is one call (up to IMPORT_CHUNK), every other prediction a call of its own (a
    single create answers its id; an import, only a count). The tasks of the single writes are
    looked up ahead (`TaskPredictions.look_up`), one read for the next IMPORT_CHUNK steps' tasks the
    map does not know: one look-up per rewrite of an imported task was a quarter of the backend's
    calls at the stress pace (docs/benchmarks.md)."""
    steps = list(cut_into_calls(target, predictions))
    for start in range(0, len(steps), IMPORT_CHUNK):
        batch = steps[start : start + IMPORT_CHUNK]
        target.look_up(int(step[0]["task"]) for step in batch if len(step) == 1)
        yield from batch


def cut_into_calls(target: TaskPredictions, predictions: Sequence[dict]) -> Iterator[list[dict]]:
    """`predictions` as the calls that write them (`write_steps`)."""
    run: list[dict] = []
    for prediction in predictions:
        if target.importable(prediction):
            run.append(prediction)
            if len(run) == IMPORT_CHUNK:
                yield run
                run = []
        else:
            if run:
                yield run
            run = []
            yield [prediction]
    if run:
        yield run


def write_step(target: TaskPredictions, step: list[dict]) -> None:
    """One call: an import of several predictions, or a single write."""
    if len(step) > 1:
        target.import_new(step)
    else:
        target.write(step[0])


def stop_reason(
    written: int, plan: WritePlan, head: int, interrupted: Callable[[], bool], others_wait: Callable[[], bool]
) -> str | None:
    """Why the rest of a head stops after `written` predictions, or None.

    Stopping for another project at the coders' floor left coders without tasks: in the ten-project
    load test three projects' first versions stopped after 4 tasks, their next rounds waited minutes
    for a slot, and 12-28 of their coders' 27-45 `/next` found no task."""
    if written >= plan.floor and interrupted():
        return "newer work waits"
    if written >= max(plan.floor, head // 2) and others_wait():
        return "another project's round waits for this worker's slot"
    return None


def adding_first(
    target: TaskPredictions, live: Live, head: Sequence[dict], reach: int | None
) -> tuple[list[dict], list[dict]]:
    """The head's predictions after its first places: those of tasks not served yet, then those an
    older version's band serves already, within its first `reach` places (in queue order each).

    Each write takes a tenth of a second or more of Label Studio's time, and twenty fast coders take
    a task every half second (docs/benchmarks.md, load run 6): rewriting a head's places that an
    older head holds (most of them, as consecutive rankings agree) adds no task a coder can be
    served, while writing new ones does. Until newer work stops it, a version writes both; the
    coders' floor counts only the first."""
    number = version_number(live.version)
    served = {task for task, writer in target.ids.live().items() if version_number(writer) < number}
    rest, reached = head[live.written :], head[live.written : reach]
    return [p for p in rest if int(p["task"]) not in served], [p for p in reached if int(p["task"]) in served]


def withdraw(target: TaskPredictions, version: str) -> None:
    """Demote the live tasks `version` wrote (a version that failed before it became the serving
    one: its few first predictions must not stay served)."""
    withdrawn = [task for task, writer in target.ids.live().items() if writer == version]
    try:
        target.look_up(withdrawn)
        for task in withdrawn:
            target.demote(task, version)
    finally:
        target.save()


def forget(target: TaskPredictions, labeled: Collection[int]) -> None:
    """Take the tasks coded meanwhile out of the live set (no coder is served them again; no call)."""
    for task in set(target.ids.live()) & set(labeled):
        target.ids.set_live(task, None)
    target.save()


def demote(
    target: TaskPredictions,
    keep: Collection[int],
    labeled: Collection[int],
    interrupted: Callable[[], bool] = lambda: False,
) -> bool:
    """Demote the live tasks not in `keep` (a version's head), one call each, stopping when
    `interrupted()`; tasks in `labeled` are only forgotten (no coder is served them again). Returns
    whether all were demoted."""
    leaving = [(task, version) for task, version in target.ids.live().items() if task not in keep]
    try:
        target.look_up(task for task, _ in leaving if task not in labeled)
        for done, (task, version) in enumerate(leaving):
            if task in labeled:
                target.ids.set_live(task, None)
                continue
            if interrupted():
                log.info(
                    "project %s: newer work waits; %d of %d tasks that left the queue stay served",
                    target.project,
                    len(leaving) - done,
                    len(leaving),
                )
                return False
            target.demote(task, version)
    finally:
        target.save()
    return True
