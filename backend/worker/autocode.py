"""Handing codes over to the model (`coding-backend autocode`), where the validation sample says it
has earned them, and taking them back (`--undo`).

A code is handed over only when the lower bounds of its precision and recall on the blind sample,
for the serving version and held out of training, reach the lead's targets (learning/validation.py
`verdict`); otherwise it is refused with the figures and roughly how many more validation segments
would close the gap. For a code handed over, the serving version's decision on every segment no
coder has coded is kept with its provenance in storage/autocode.py (never in Label Studio: see
there why), where no round reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.learning.validation import CodeEstimate, Verdict, verdict
from backend.storage.autocode import AutoCoded, AutoCodes, AutoCodeStore
from backend.storage.state import now
from backend.worker.context import ProjectContext
from backend.worker.validation import SampleError


@dataclass(frozen=True)
class Targets:
    """The lead's targets for the lower bounds of a code's precision and recall."""

    min_precision: float
    min_recall: float

    def __post_init__(self) -> None:
        for name, value in (("--min-precision", self.min_precision), ("--min-recall", self.min_recall)):
            if not 0 < value <= 1:
                raise SampleError(f"{name} {value}: a target must lie in (0, 1], e.g. 0.9")


def store_of(ctx: ProjectContext) -> AutoCodeStore:
    return AutoCodeStore(ctx.store.layout.project(ctx.project))


def autocode(ctx: ProjectContext, codes: list[str], targets: Targets) -> list[Verdict]:
    """Judge each code and hand over those that meet the targets; returns every code's verdict."""
    estimates = ctx.validation.read()
    estimates = None if estimates is None else estimates.estimates
    if estimates is None:
        raise SampleError(
            f"project {ctx.project} has no validation estimates: draw a sample first "
            f"(coding-backend validate --project {ctx.project} --size 150) and let coders code some of it"
        )
    serving = ctx.states.read().current_version
    if estimates.version != serving:
        raise SampleError(
            f"the validation estimates are of {estimates.version}, but {serving} serves now: wait for its "
            "round to measure it, then ask again"
        )
    if not estimates.held_out:
        raise SampleError(
            "the validation sample was released into training: its estimates are no longer held out "
            "and would flatter the model; draw a new sample first"
        )
    unknown = [code for code in codes if code not in estimates.codes]
    if unknown or not codes:
        raise SampleError(
            f"--codes: unknown code(s) {', '.join(unknown) or '(none given)'}; "
            f"the project's codes are {', '.join(estimates.codes)}"
        )
    verdicts = [
        verdict(code, CodeEstimate.of(estimates.codes[code]), targets.min_precision, targets.min_recall)
        for code in codes
    ]
    accepted = [found.code for found in verdicts if found.accepted]
    if accepted:
        handed = decisions(ctx, serving, accepted, estimates.codes, targets)
        store_of(ctx).update(lambda kept: kept.codes.update(handed))
    return verdicts


def decisions(
    ctx: ProjectContext, version: str, codes: list[str], estimates: dict[str, dict], targets: Targets
) -> dict[str, AutoCoded]:
    """The version's decisions on the segments no coder has coded, for each of `codes`, with the
    estimates they rest on (`estimates`: every code's, in the model's order of codes)."""
    pool = ctx.store.ranked_pool(ctx.project, version)
    if pool is None:
        raise SampleError(f"{version} keeps no ranked pool to take its decisions from")
    coded = {task.id for task in ctx.studio.tasks(ctx.project_id, annotated=True, data_only=True)}
    rows = [i for i, task in enumerate(pool.task_ids) if int(task) not in coded]
    decided_at, handed = now(), {}
    for code in codes:
        j = list(estimates).index(code)
        handed[code] = AutoCoded(
            version=version,
            decided_at=decided_at,
            min_precision=targets.min_precision,
            min_recall=targets.min_recall,
            estimate=estimates[code],
            task_ids=[int(pool.task_ids[i]) for i in rows],
            decisions=[bool(pool.decisions[i, j]) for i in rows],
            probabilities=[round(float(pool.proba[i, j]), 6) for i in rows],
        )
    return handed


def undo(ctx: ProjectContext, codes: list[str] | None) -> list[str]:
    """Take `codes` (all, when None) back from the model; returns the codes taken back."""
    taken: list[str] = []

    def take_back(kept: AutoCodes) -> None:
        wanted = list(kept.codes) if codes is None else codes
        missing = [code for code in wanted if code not in kept.codes]
        if missing or not wanted:
            raise SampleError(
                f"--undo: not handed over to the model: {', '.join(missing) or '(no code is)'}; "
                f"handed over: {', '.join(kept.codes) or 'none'}"
            )
        for code in wanted:
            del kept.codes[code]
        taken.extend(wanted)

    store_of(ctx).update(take_back)
    return taken
