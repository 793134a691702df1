"""One row per segment: a task with its coders' answers and the model's decision, as the exports write it.

Pure: Label Studio's tasks, the serving version's ranked pool, the codes handed over to the model
and the validation sample come in as values. A segment's final codes come from its coders (combined
by MULTI_CODER_RULE); else, for the codes the lead handed over (`coding-backend autocode`), from the
model's decision that hand-over stored; every other code of a segment no coder coded is empty
(missing), never 0, because nobody said it is absent. The serving version's suggestion is kept beside
them (`suggested_codes`, `p_<code>`): a prediction, not a code. Coders appear as the names CoderNames
gives them (pseudonyms unless the lead asks for emails).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from backend.domain.annotations import CoderAnswer, coder_answers, combine
from backend.domain.scheme import CodingScheme
from backend.domain.tasks import Task
from backend.domain.versions import LIVE

CODERS, MODEL, UNCODED = "coders", "model", "uncoded"
# per_coder trains on every answer; a segment's one final answer is then the majority's
PER_CODER_FINAL = "majority"
PROVENANCE = (
    "source",
    "coders",
    "n_coders",
    "rule",
    "disagreement",
    "coder_codes",
    "autocoded",
    "validation",
    "model_version",
    "suggested_codes",
    "evidence",
)


@dataclass(frozen=True)
class ModelView:
    """What the serving version decided for the tasks it ranked: per task, each code's probability
    and decision, over the version's own codes; and the tasks whose prediction Label Studio serves
    (under the one name, domain/versions.py `LIVE`) it wrote."""

    version: str
    codes: tuple[str, ...]
    proba: Mapping[int, np.ndarray]
    decided: Mapping[int, np.ndarray]
    live: frozenset[int] = frozenset()

    @classmethod
    def of(cls, version: str, codes: Sequence[str], pool, live: Iterable[int] = ()) -> ModelView:
        """From a RankedPool (storage/ranked_pool.py): its task ids, probabilities and decisions."""
        ids = [int(task) for task in pool.task_ids]
        return cls(
            version,
            tuple(codes),
            dict(zip(ids, np.asarray(pool.proba, dtype=float), strict=True)),
            dict(zip(ids, np.asarray(pool.decisions), strict=True)),
            frozenset(live),
        )

    def wrote(self, task_id: int, prediction: Mapping) -> bool:
        """Whether a task's prediction in Label Studio is this version's."""
        name = prediction.get("model_version")
        return name == self.version or (name == LIVE and task_id in self.live)


@dataclass(frozen=True)
class HandOver:
    """Codes the lead handed over to the model (storage/autocode.py): per code, the version whose
    decisions were stored and its decision for each segment no coder had coded then."""

    versions: Mapping[str, str] = field(default_factory=dict)
    decided: Mapping[str, Mapping[int, bool]] = field(default_factory=dict)

    @classmethod
    def of(cls, handed: Mapping[str, tuple[str, Sequence[int], Sequence[bool]]]) -> HandOver:
        """From code → (version, task ids, decisions)."""
        return cls(
            {code: version for code, (version, _, _) in handed.items()},
            {code: dict(zip(ids, map(bool, d), strict=True)) for code, (_, ids, d) in handed.items()},
        )

    def of_task(self, task_id: int) -> dict[str, bool]:
        """The handed-over codes decided for a task, and their decisions."""
        return {code: decided[task_id] for code, decided in self.decided.items() if task_id in decided}


def column_name(name: str) -> str:
    """A column name R, Stata and pandas all take: letters, digits and underscores."""
    return re.sub(r"\W+", "_", name, flags=re.ASCII).strip("_") or "field"


def flat_data(data: Mapping, prefix: str = "") -> dict[str, object]:
    """A task's data with nested objects flattened (`meta.child_sex` → `meta_child_sex`)."""
    flat: dict[str, object] = {}
    for key, value in data.items():
        name = column_name(f"{prefix}_{key}" if prefix else str(key))
        if isinstance(value, Mapping):
            flat.update(flat_data(value, name))
        else:
            flat[name] = value
    return flat


def code_points(text: str, utf16: int) -> int:
    """A Label Studio (JavaScript, UTF-16) offset as a position in characters (Unicode code points),
    as REFI-QDA and Python count."""
    units = 0
    for position, char in enumerate(text):
        if units >= utf16:
            return position
        units += 2 if ord(char) > 0xFFFF else 1
    return len(text)


@dataclass(frozen=True)
class RowMaker:
    """Turns tasks into rows with the same columns: `fields` of the task data, then provenance.
    `validation` maps the blind validation sample's tasks to "held out" or "released"."""

    scheme: CodingScheme
    rule: str
    emails: Mapping[int, str]
    names: Callable[[str], str]
    model: ModelView | None
    fields: tuple[str, ...]
    handed: HandOver = HandOver()
    validation: Mapping[int, str] = field(default_factory=dict)

    @property
    def final_rule(self) -> str:
        return PER_CODER_FINAL if self.rule == "per_coder" else self.rule

    def code_columns(self) -> dict[str, str]:
        """Code → its 0/1 column."""
        return {code: "code_" + column_name(code) for code in self.scheme.codes}

    def probability_columns(self) -> dict[str, str]:
        return {code: "p_" + column_name(code) for code in self.scheme.codes}

    def data_columns(self) -> dict[str, str]:
        """Data field → its column: its own name, or `data_<name>` where it would take a column of ours."""
        ours = {"task_id", *PROVENANCE, *self.code_columns().values(), *self.probability_columns().values()}
        return {field: f"data_{field}" if field in ours else field for field in self.fields}

    def columns(self) -> list[str]:
        return [
            "task_id",
            *self.data_columns().values(),
            *self.code_columns().values(),
            *PROVENANCE[:-1],
            *self.probability_columns().values(),  # beside the model version they come from
            PROVENANCE[-1],
        ]

    def kinds(self) -> dict[str, str]:
        """The type of each column that has one whatever the data (the data fields' come from the data)."""
        kinds = {"task_id": "int", "n_coders": "int", "disagreement": "bool"}
        kinds |= {column: "int" for column in self.code_columns().values()}
        kinds |= {column: "float" for column in self.probability_columns().values()}
        text = ("source", "coders", "rule", "coder_codes", "autocoded", "validation", "model_version")
        text += ("suggested_codes", "evidence")
        return kinds | dict.fromkeys(text, "text")

    def rows(self, tasks: Iterable[Task]) -> Iterable[dict]:
        for task in tasks:
            yield self.row(task)

    def row(self, task: Task) -> dict:
        data = flat_data(task.data)
        row: dict[str, object] = {"task_id": task.id}
        row |= {column: data.get(field) for field, column in self.data_columns().items()}
        answers = [self._named(answer) for answer in coder_answers(task, self.scheme, self.emails)]
        values, provenance = self._final(task.id, answers)
        row |= {column: values.get(code) for code, column in self.code_columns().items()}
        row.update(provenance)
        row["validation"] = self.validation.get(task.id, "")
        row.update(self._model_columns(task))
        return row

    def _named(self, answer: CoderAnswer) -> CoderAnswer:
        return CoderAnswer(answer.task_id, self.names(answer.coder), answer.codes, answer.updated_at)

    def _final(self, task_id: int, answers: Sequence[CoderAnswer]) -> tuple[dict[str, int], dict]:
        """Each final code's 0/1 (a code missing: nobody decided it) and where they came from."""
        codes = self.scheme.codes
        provenance = {
            "source": UNCODED,
            "coders": "",
            "n_coders": len(answers),
            "rule": "",
            "disagreement": None,
            "coder_codes": {a.coder: [c for c in codes if c in a.codes] for a in answers},
            "autocoded": "",
        }
        if answers:
            chosen = set(combine(answers, self.final_rule, codes)[0][0])
            provenance.update(
                source=CODERS,
                coders=";".join(a.coder for a in answers),
                rule=self.final_rule if len(answers) > 1 else "single coder",
                disagreement=None if len(answers) < 2 else len({a.codes for a in answers}) > 1,
            )
            return {code: int(code in chosen) for code in codes}, provenance
        handed = {code: decision for code, decision in self.handed.of_task(task_id).items() if code in codes}
        if handed:
            provenance["source"] = MODEL
            provenance["autocoded"] = ";".join(f"{code}@{self.handed.versions[code]}" for code in handed)
        return {code: int(decision) for code, decision in handed.items()}, provenance

    def _suggested(self, task_id: int) -> str:
        """The serving version's decided codes for a task it ranked: its suggestion, not a code."""
        decided = self.model.decided[task_id]
        return ";".join(c for c, d in zip(self.model.codes, decided, strict=True) if d)

    def _model_columns(self, task: Task) -> dict:
        """The serving version's probabilities for a task it ranked, and its evidence spans."""
        columns: dict[str, object] = {"model_version": None, "suggested_codes": None}
        columns["evidence"] = self._evidence(task)
        proba = None if self.model is None else self.model.proba.get(task.id)
        by_code = {} if proba is None else dict(zip(self.model.codes, proba, strict=True))
        for code, column in self.probability_columns().items():
            columns[column] = None if code not in by_code else round(float(by_code[code]), 6)
        if proba is not None:
            columns["model_version"] = self.model.version
            columns["suggested_codes"] = self._suggested(task.id)
        return columns

    def _evidence(self, task: Task) -> list[dict]:
        """The evidence regions of the serving version's prediction: code, characters [start, end), text."""
        tag = self.scheme.evidence
        if tag is None or self.model is None:
            return []
        code_of = {label: code for code, label in tag.labels.items()}
        text = self.scheme.text_in(task.data)
        spans = []
        for prediction in task.predictions:
            if not self.model.wrote(task.id, prediction):
                continue
            for item in prediction.get("result") or []:
                value = item.get("value") or {}
                if item.get("from_name") != tag.name or "start" not in value:
                    continue
                for label in value.get("labels") or []:
                    if label in code_of:
                        start, end = code_points(text, value["start"]), code_points(text, value["end"])
                        spans.append(
                            {"code": code_of[label], "start": start, "end": end, "text": text[start:end]}
                        )
        return spans


def data_fields(first: Task | None, text_field: str) -> tuple[str, ...]:
    """The data columns: the first task's fields (flattened), the segment's text among them."""
    if first is None:
        return (text_field,)
    return tuple(flat_data(first.data))
