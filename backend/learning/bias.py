"""Automation bias, measured: how often coders keep the model's suggestion as it was, per coder and
code, and how their agreement with the model compares with blind coders' on the validation sample.

Which suggestion did a coder start from? An annotation names it (`parent_prediction`), but the backend
keeps one prediction per task and rewrites it in place for each new version (studio/writeback.py),
so the prediction's result today, and the copy Label Studio stores with the annotation at submit
(`prediction`, the current version's then), may not be what the coder saw. The backend therefore
records every write of a prediction (storage/suggestions.py: when, which prediction, which codes),
and the suggestion seen is the write of that prediction live when the coder started: the
annotation's `created_at` minus its `lead_time` (the seconds the editor was open), or its
`draft_created_at` when earlier (a draft resumed later started from the draft, not the suggestion).
Annotations this cannot settle are counted by reason, never guessed (`Unjudged`).

Agreement is the share of annotations whose decision on a code equals the model's (percent
agreement), with a Wilson interval (statsmodels), not Cohen's kappa: the question is "how often was
the suggestion kept", a share the lead reads directly, and kappa is unstable for rare codes and
undefined when a code is never suggested or always is, which automation bias makes common. Pure:
values in, values out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from backend.learning.validation import CodeEstimate, Interval, proportion

# A coder who keeps at least this share of whole suggestions unchanged is flagged: at 0.95, one
# change in twenty; careful coders of a good model still change a suggestion now and then.
ACCEPT_ALL_FLAG = 0.95
# ...over at least this many judged annotations: with fewer, 0.95 is all or all but none of a
# handful, which easy segments alone can explain (20 of 20 still has a Wilson interval down to 0.84).
MIN_JUDGED = 20
# Label Studio's clock (`created_at`) and the backend's (a write's time) may differ a little, and the
# editor loads after the coder asks for the task: a write this close to the start leaves open which
# version the coder saw.
SLACK = timedelta(seconds=2)


class Unjudged(StrEnum):
    """Why an annotation's suggestion is not known."""

    NO_SUGGESTION = "no_suggestion"  # no parent_prediction: started without a pre-annotation
    NO_START = "no_start_time"  # no created_at (or an unreadable one)
    NOT_RECORDED = "suggestion_not_recorded"  # no write of that prediction known before the start
    AMBIGUOUS = "ambiguous"  # a write with other codes within SLACK of the start


@dataclass(frozen=True)
class Shown:
    """One write of a task's prediction: when, which prediction (its id in Label Studio), the
    version and the codes it suggested."""

    at: datetime
    prediction: int | None  # None: made by an import call, which answers no ids
    version: str
    codes: frozenset[str]


@dataclass(frozen=True)
class Started:
    """A coder's counted annotation as automation bias sees it."""

    coder: str
    task: int
    codes: frozenset[str]
    parent: int | None
    started_at: datetime | None


def suggestion_seen(started: Started, writes: Sequence[Shown]) -> Shown | Unjudged:
    """The write of the annotation's parent prediction live when the coder started (`writes`: the
    task's, oldest first), or why it is not known."""
    if started.parent is None:
        return Unjudged.NO_SUGGESTION
    if started.started_at is None:
        return Unjudged.NO_START
    # a write of unknown id (an import's) made the task's first prediction of ours, the one later
    # writes update in place: the parent's
    ours = [write for write in writes if write.prediction in (started.parent, None)]
    before = [write for write in ours if write.at <= started.started_at - SLACK]
    if not before:
        return Unjudged.NOT_RECORDED
    close = [w for w in ours if started.started_at - SLACK < w.at <= started.started_at + SLACK]
    if any(write.codes != before[-1].codes for write in close):
        return Unjudged.AMBIGUOUS
    return before[-1]


@dataclass
class Tally:
    """Judged annotations: how many, how many kept the whole suggestion, and per code how often it was
    suggested, kept as suggested (present or absent alike), added or removed."""

    judged: int = 0
    unchanged: int = 0
    suggested: Counter = field(default_factory=Counter)
    added: Counter = field(default_factory=Counter)
    removed: Counter = field(default_factory=Counter)

    def add(self, codes: frozenset[str], suggestion: frozenset[str]) -> None:
        self.judged += 1
        self.unchanged += codes == suggestion
        self.suggested.update(suggestion)
        self.added.update(codes - suggestion)
        self.removed.update(suggestion - codes)

    def per_code(self, codes: Iterable[str]) -> dict[str, dict]:
        """Per code: counts and the share of judged annotations that kept its decision (an interval)."""
        return {
            code: {
                "suggested": self.suggested[code],
                "added": self.added[code],
                "removed": self.removed[code],
                "kept": asdict(proportion(self.judged - self.added[code] - self.removed[code], self.judged)),
            }
            for code in codes
        }


@dataclass(frozen=True)
class CoderBias:
    """One coder's figures: the judged annotations, the share that kept the whole suggestion
    unchanged, per code how often its decision was kept, the unjudged ones by reason, the flag."""

    judged: int
    unchanged: Interval
    codes: dict[str, dict]
    unjudged: dict[str, int]
    flagged: bool


def flagged(unchanged: int, judged: int) -> bool:
    """Whether a coder keeps nearly every suggestion as it was (ACCEPT_ALL_FLAG over MIN_JUDGED)."""
    return judged >= MIN_JUDGED and unchanged >= ACCEPT_ALL_FLAG * judged


def blind_agreement(estimate: CodeEstimate) -> Interval:
    """How often blind coders' decision on a code equals the model's, on the coded validation sample,
    from the counts behind its estimates: precision's n is the model's positives (true + false),
    recall's n the coders' (true + missed), F1's n the sample."""
    n, decided, positives = estimate.f1.n, estimate.precision.n, estimate.recall.n
    both = round(estimate.precision.estimate * decided) if decided else 0
    disagree = (decided - both) + (positives - both)
    return proportion(n - disagree, n)


@dataclass(frozen=True)
class BiasReport:
    """Per coder (as named) and per code over all coders; the judged and unjudged annotations; per
    code the agreement with the suggestion beside blind coders' agreement with the model."""

    coders: dict[str, CoderBias]
    codes: dict[str, dict]
    judged: int
    unjudged: dict[str, int]
    blind: int  # annotations on the validation sample (no suggestion by design), not judged here

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "flag_rule": {"unchanged_at_least": ACCEPT_ALL_FLAG, "judged_at_least": MIN_JUDGED},
        }


def automation_bias(
    started: Iterable[Started],
    writes: Mapping[int, Sequence[Shown]],
    codes: Sequence[str],
    blind_tasks: frozenset[int] = frozenset(),
    blind: Mapping[str, CodeEstimate] | None = None,
) -> BiasReport:
    """The report over `started` (each coder's counted annotation per task), the writes per task
    (oldest first), the validation sample's tasks (coded blind: counted apart) and its estimates."""
    tallies: dict[str, Tally] = {}
    missing: dict[str, Counter] = {}
    overall, blind_count = Tally(), 0
    for annotation in started:
        if annotation.task in blind_tasks:
            blind_count += 1
            continue
        tally = tallies.setdefault(annotation.coder, Tally())
        missing.setdefault(annotation.coder, Counter())
        seen = suggestion_seen(annotation, writes.get(annotation.task, ()))
        if isinstance(seen, Unjudged):
            missing[annotation.coder][seen.value] += 1
            continue
        tally.add(annotation.codes, seen.codes)
        overall.add(annotation.codes, seen.codes)
    coders = {
        coder: CoderBias(
            tally.judged,
            proportion(tally.unchanged, tally.judged),
            tally.per_code(codes),
            dict(missing[coder]),
            flagged(tally.unchanged, tally.judged),
        )
        for coder, tally in sorted(tallies.items())
    }
    per_code = {
        code: {
            **figures,
            "blind": asdict(blind_agreement(blind[code])) if blind and code in blind else None,
        }
        for code, figures in overall.per_code(codes).items()
    }
    return BiasReport(coders, per_code, overall.judged, dict(sum(missing.values(), Counter())), blind_count)
