"""Handing codes over to the model (`coding-backend autocode`), where the validation sample says it
has earned them, and taking them back (`--undo`).

A code is handed over only when the lower bounds of its precision and recall on the blind sample,
for the serving version and held out of training, reach the lead's targets (learning/validation.py
`verdict`); otherwise it is refused with the figures and roughly how many more validation segments
would close the gap. For a code handed over, the serving version's decision on every segment no
coder has coded is kept with its provenance in storage/autocode.py (never in Label Studio: see
there why), where no round trains on it.

Each version that goes live later re-decides the codes handed over (`redecide`, a step of the
round after its estimates), on every segment no coder has coded by then, if its own estimate on the
held-out sample still reaches the targets the lead set. If it does not (or it has no such estimate),
the code is suspended rather than decided by a version nobody vouched for: the decisions of the last
version that met the targets stay on the segments still uncoded, and the status page, /metrics and
the log say so until a version meets the targets again or the lead takes the code back (`undo`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from backend.learning.autocoding import Decisions, redecision
from backend.learning.validation import CodeEstimate, Verdict, verdict
from backend.storage.autocode import AutoCoded, AutoCodes, AutoCodeStore, Redecided
from backend.storage.state import now
from backend.storage.validation import Estimates
from backend.worker.context import ProjectContext
from backend.worker.publish import Ranked
from backend.worker.validation import SampleError

log = logging.getLogger(__name__)


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
    coded = [task.id for task in ctx.studio.tasks(ctx.project_id, annotated=True, data_only=True)]
    rows = ~np.isin(pool.task_ids, np.asarray(coded, dtype=np.int64))
    decided_at, handed = now(), {}
    for code in codes:
        j = list(estimates).index(code)
        found = Decisions.of(pool.task_ids[rows], pool.decisions[rows, j], pool.proba[rows, j])
        handed[code] = AutoCoded(
            version=version,
            decided_at=decided_at,
            min_precision=targets.min_precision,
            min_recall=targets.min_recall,
            estimate=estimates[code],
            handed_version=version,
            **as_stored(found),
        )
    return handed


def as_stored(found: Decisions) -> dict[str, list]:
    """A code's decisions as autocoded.json keeps them, probabilities to six decimals. Converted by
    numpy, not value by value: a round re-decides every uncoded segment (100,000 segments and three
    codes handed over: 0.1 s a round in Python's `round` alone)."""
    return {
        "task_ids": found.task_ids.tolist(),
        "decisions": found.decided.tolist(),
        "probabilities": np.round(found.proba, 6).tolist(),
    }


def redecide(
    ctx: ProjectContext, ranked: Ranked, coded: Collection[int], estimates: Estimates | None
) -> dict[str, Redecided]:
    """Let the version that just went live re-decide each code handed over (`coded`: the tasks coders
    have coded; `estimates`: the round's on the validation sample, None without). Returns what each
    re-decision changed; nothing when a newer round waits (it re-decides instead). A failure is
    logged: the version is live, the round goes on."""
    if ctx.round_waits():
        return {}
    done: dict[str, Redecided] = {}
    reasons: dict[str, str | None] = {}

    def change(kept: AutoCodes) -> None:
        for code, handed in kept.codes.items():
            done[code] = redecide_code(code, handed, ranked, coded, estimates)
            reasons[code] = handed.suspended

    try:
        store = store_of(ctx)
        if store.read().codes:
            store.update(change)
    except Exception:
        log.exception("project %s: the codes handed over to the model were not re-decided", ctx.project)
        return {}
    for code, found in done.items():
        if found.held:
            log.warning(
                "project %s: auto-coding of %s SUSPENDED: %s; %s. More coded validation segments may lift "
                "the estimate; `coding-backend autocode --project %s --codes %s --undo` takes the code back",
                ctx.project,
                code,
                reasons[code],
                found.describe(),
                ctx.project,
                code,
            )
        else:
            log.info("project %s: %s %s", ctx.project, code, found.describe())
    return done


def redecide_code(
    code: str, handed: AutoCoded, ranked: Ranked, coded: Collection[int], estimates: Estimates | None
) -> Redecided:
    """Re-decide one code handed over (changing `handed` in place), or hold its decisions where the
    new version misses the targets; either way segments coders coded leave it."""
    version, pool, codes = ranked.trained.version.name, ranked.pool, ranked.trained.model.codes
    before = Decisions.of(handed.task_ids, handed.decisions, handed.probabilities)
    reason = suspension(code, handed, version, estimates)
    if reason is None and code in codes:
        j = codes.index(code)
        after = Decisions.of(pool.task_ids, pool.decisions[:, j], pool.proba[:, j])
    else:
        reason = reason or f"version {version} has no code {code}"
        after = before.within(pool.task_ids)
    found = redecision(before, after, coded)
    record = Redecided(
        version=version,
        before=handed.version,
        at=now(),
        gained=found.gained,
        lost=found.lost,
        coded=found.coded,
        gone=found.gone,
        joined=found.joined,
        held=reason is not None,
    )
    if reason is None:
        handed.version, handed.decided_at, handed.estimate = version, record.at, estimates.codes[code]
    for name, values in as_stored(after).items():
        setattr(handed, name, values)
    handed.redecided, handed.suspended = record, reason
    handed.coded_since += found.coded
    return record


def suspension(code: str, handed: AutoCoded, version: str, estimates: Estimates | None) -> str | None:
    """Why `version` may not decide `code` (None: its estimate on the held-out validation sample
    reaches the targets the code was handed over at)."""
    if estimates is None or estimates.version != version:
        return (
            f"version {version} has no estimate on the validation sample (a new sample not coded yet, "
            "or its estimate failed: see the log)"
        )
    if not estimates.held_out:
        return (
            "the validation sample was released into training, so no estimate of the new version is held "
            "out; draw a new sample to let versions decide again"
        )
    if code not in estimates.codes:
        return f"version {version} has no estimate for {code}"
    found = verdict(code, CodeEstimate.of(estimates.codes[code]), handed.min_precision, handed.min_recall)
    return None if found.accepted else f"version {version}: {'; '.join(found.short)}"


def undo(ctx: ProjectContext, codes: list[str] | None) -> list[str]:
    """Take `codes` (all, when None) back from the model altogether: the state before the `autocode`
    command that handed them over, whatever versions re-decided them since (nothing in Label Studio
    changes: the model's decisions never were there). Returns the codes taken back."""
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
