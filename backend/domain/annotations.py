"""Label Studio annotations → coder-aware training examples.

A coder is a Label Studio user, named by email. Of one coder's annotations of a task, the most
recently updated submitted one counts (skipped/cancelled ones never do), so a coder who revises
a segment replaces their earlier answer. `TRAIN_CODERS` keeps only the listed coders.

When several coders annotated one task, `MULTI_CODER_RULE` decides what the model learns:

- ``majority`` (default): a code applies when more than half of the coders gave it; on a tie
  (e.g. two coders who disagree) the most recent annotation decides, so a consensus revision
  after a discussion wins. With one coder it is simply that coder's answer.
- ``latest``: the most recently updated annotation of any coder, alone.
- ``union``: a code applies when any coder gave it (favours recall of rare codes).
- ``per_coder``: each coder's answer is its own training example (the model sees the
  disagreement as it is).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from backend.domain.scheme import CodingScheme, label_matrix
from backend.domain.tasks import Task


@dataclass(frozen=True)
class CoderAnswer:
    """One coder's counted annotation of one task."""

    task_id: int
    coder: str
    codes: frozenset[str]
    updated_at: str


@dataclass(frozen=True)
class Example:
    """A training example and the coders whose annotations it rests on."""

    task_id: int
    text: str
    codes: tuple[str, ...]
    coders: tuple[str, ...]


def coder_name(annotation: dict, emails: Mapping[int, str]) -> str:
    """The coder's email (lower case), or ``user-<id>`` when Label Studio did not tell it."""
    user = annotation.get("completed_by")
    if isinstance(user, dict):
        user = user.get("email") or user.get("id")
    if isinstance(user, str) and "@" in user:
        return user.strip().lower()
    try:
        return emails.get(int(user), f"user-{int(user)}").lower()
    except (TypeError, ValueError):
        return "unknown"


def _recency(annotation: dict) -> tuple[str, int]:
    return str(annotation.get("updated_at") or annotation.get("created_at") or ""), int(
        annotation.get("id") or 0
    )


def counted_annotations(task: Task, emails: Mapping[int, str]) -> dict[str, dict]:
    """Each coder's counted annotation of the task: their latest submitted one."""
    latest: dict[str, dict] = {}
    for annotation in task.annotations:
        if annotation.get("was_cancelled"):
            continue
        coder = coder_name(annotation, emails)
        if coder not in latest or _recency(annotation) > _recency(latest[coder]):
            latest[coder] = annotation
    return latest


def coder_answers(task: Task, scheme: CodingScheme, emails: Mapping[int, str]) -> list[CoderAnswer]:
    """Each coder's latest submitted annotation of the task, oldest first."""
    answers = [
        CoderAnswer(task.id, coder, frozenset(scheme.codes_of(a.get("result") or [])), _recency(a)[0])
        for coder, a in counted_annotations(task, emails).items()
    ]
    return sorted(answers, key=lambda answer: (answer.updated_at, answer.coder))


Combined = list[tuple[tuple[str, ...], tuple[str, ...]]]


def _per_coder(answers: Sequence[CoderAnswer], codes: Sequence[str]) -> Combined:
    return [(_in_order(answer.codes, codes), (answer.coder,)) for answer in answers]


def _latest(answers: Sequence[CoderAnswer], codes: Sequence[str]) -> Combined:
    return [(_in_order(answers[-1].codes, codes), (answers[-1].coder,))]


def _union(answers: Sequence[CoderAnswer], codes: Sequence[str]) -> Combined:
    chosen = frozenset().union(*(answer.codes for answer in answers))
    return [(_in_order(chosen, codes), tuple(answer.coder for answer in answers))]


def _majority(answers: Sequence[CoderAnswer], codes: Sequence[str]) -> Combined:
    chosen = set()
    for code in codes:
        votes = sum(code in answer.codes for answer in answers)
        tie_break = code in answers[-1].codes
        if 2 * votes > len(answers) or (2 * votes == len(answers) and tie_break):
            chosen.add(code)
    return [(_in_order(chosen, codes), tuple(answer.coder for answer in answers))]


def _in_order(chosen: Iterable[str], codes: Sequence[str]) -> tuple[str, ...]:
    chosen = set(chosen)
    return tuple(code for code in codes if code in chosen)


# MULTI_CODER_RULE → how one task's answers (oldest first) become training examples.
CODER_RULES: dict[str, Callable[[Sequence[CoderAnswer], Sequence[str]], Combined]] = {
    "majority": _majority,
    "latest": _latest,
    "union": _union,
    "per_coder": _per_coder,
}


def answers_by_task(
    tasks: Iterable[Task], scheme: CodingScheme, emails: Mapping[int, str]
) -> dict[int, list[CoderAnswer]]:
    """Each coder's counted answer, per annotated task (what agreement is computed on)."""
    return {task.id: coder_answers(task, scheme, emails) for task in tasks}


def combine(answers: Sequence[CoderAnswer], rule: str, codes: Sequence[str]) -> Combined:
    """Apply MULTI_CODER_RULE to one task's answers (oldest first): [(codes, coders), ...]."""
    if rule not in CODER_RULES:
        raise ValueError(f"unknown MULTI_CODER_RULE {rule!r}")
    return CODER_RULES[rule](answers, codes)


def training_examples(
    tasks: Iterable[Task],
    scheme: CodingScheme,
    emails: Mapping[int, str],
    *,
    rule: str,
    coders: Sequence[str] = (),
) -> tuple[list[Example], int]:
    """Examples from annotated tasks, restricted to `coders` when given.

    Returns the examples and the number of annotated tasks left out for an empty text.
    """
    allowed = {coder.lower() for coder in coders}
    examples, blank = [], 0
    for task in tasks:
        answers = [a for a in coder_answers(task, scheme, emails) if not allowed or a.coder in allowed]
        if not answers:
            continue
        text = scheme.text_in(task.data)
        if not text.strip():
            blank += 1
            continue
        for chosen, by in combine(answers, rule, scheme.codes):
            examples.append(Example(task.id, text, chosen, by))
    return examples, blank


@dataclass(frozen=True)
class LabeledSet:
    """The training examples of a round, as the model takes them."""

    task_ids: list[int]
    texts: list[str]
    matrix: np.ndarray
    coders: list[tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, positions: Sequence[int]) -> LabeledSet:
        """The examples at `positions`, in that order."""
        return LabeledSet(
            [self.task_ids[i] for i in positions],
            [self.texts[i] for i in positions],
            self.matrix[np.asarray(positions, dtype=np.int64)],
            [self.coders[i] for i in positions],
        )

    def coder_counts(self) -> dict[str, int]:
        """Training examples each coder's annotations contributed to."""
        return dict(Counter(coder for coders in self.coders for coder in coders).most_common())


def labeled_set(examples: Sequence[Example], codes: Sequence[str]) -> LabeledSet:
    """The examples as texts and a label matrix (one column per code)."""
    matrix = label_matrix([e.codes for e in examples], codes).reshape(len(examples), len(codes))
    return LabeledSet(
        [e.task_id for e in examples], [e.text for e in examples], matrix, [e.coders for e in examples]
    )
