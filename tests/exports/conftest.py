"""A small coded project, written by hand: two coders who agree on one segment and disagree on another,
one coder's "none of these", a segment only the model coded (its one handed-over code, with an evidence
span after an emoji), and an uncoded one in the blind validation sample."""

from __future__ import annotations

import numpy as np
import pytest

from backend.domain.coders import CoderNames
from backend.domain.scheme import parse_label_config
from backend.domain.tasks import Task
from backend.domain.versions import LIVE
from backend.exports.rows import HandOver, ModelView, RowMaker, data_fields
from backend.resources import label_config
from tests.fakes import FakeStudio

VERSION = "v3-20260101120000"
KEY = bytes(32)
CODES = ("physical_health", "mental_health", "daily_functioning", "health_unspecific", "freq_mentioned")


def interview(name: str, index: int, sex: str) -> dict:
    return {"interview_id": name, "speech_index": index, "meta": {"child_sex": sex}}


def evidence_prediction(text: str, start: int, end: int) -> dict:
    """The serving version's prediction with an evidence region (Label Studio offsets: UTF-16), as
    Label Studio serves it: under the one served name."""
    utf16 = lambda position: len(text[:position].encode("utf-16-le")) // 2  # noqa: E731
    region = {
        "from_name": "evidence",
        "to_name": "text",
        "type": "labels",
        "value": {
            "start": utf16(start),
            "end": utf16(end),
            "text": text[start:end],
            "labels": ["health_unspecific"],
        },
    }
    return {"model_version": LIVE, "score": 0.1, "result": [region]}


@pytest.fixture
def studio() -> FakeStudio:
    studio = FakeStudio(config=label_config("interview_coding_evidence"))
    studio.add_task("Mir tut der Bauch weh.", question="Wie geht es dir?", **interview("a", 2, "Mädchen"))
    studio.add_task("Ich bin oft traurig 😢 und müde.", question="Und sonst?", **interview("a", 1, "Mädchen"))
    studio.add_task("Ich spiele gern Fußball.", question="Was machst du gern?", **interview("b", 1, "Junge"))
    studio.add_task(
        "😀 Über Gesundheit weiß ich nichts.", question="Gesundheit?", **interview("b", 2, "Junge")
    )
    studio.add_task("Nichts.", question="Noch etwas?", **interview("b", 3, "Junge"))
    studio.annotate(0, ["physical_health"], user=1, when="2026-01-01T10:00")
    studio.annotate(0, ["physical_health"], user=2, when="2026-01-01T11:00")
    studio.annotate(1, ["mental_health", "freq_mentioned"], user=1, when="2026-01-01T10:00")
    studio.annotate(1, ["physical_health"], user=2, when="2026-01-01T11:00")
    studio.annotate(4, [], user=1, when="2026-01-01T12:00")
    text = studio.all[3].data["text"]
    start = text.index("Gesundheit")
    studio.all[3] = Task(
        3, studio.all[3].data, (), (evidence_prediction(text, start, start + len("Gesundheit")),)
    )
    return studio


# the lead handed health_unspecific over when tasks 3 and 4 were uncoded; a coder coded 4 since
HANDED = HandOver.of({"health_unspecific": (VERSION, [3, 4], [True, False])})


@pytest.fixture
def model() -> ModelView:
    """The serving version ranked tasks 3 and 4 (4 was coded after its round) and wrote both."""
    proba = np.array([[0.1, 0.2, 0.05, 0.8, 0.3], [0.05, 0.1, 0.1, 0.4, 0.2]])
    decisions = np.array([[0, 0, 0, 1, 0], [0, 0, 0, 0, 0]])
    pool = type("Pool", (), {"task_ids": np.array([3, 4]), "proba": proba, "decisions": decisions})
    return ModelView.of(VERSION, CODES, pool, live=[3, 4])


@pytest.fixture
def names() -> CoderNames:
    return CoderNames(KEY)


@pytest.fixture
def maker(studio, model, names) -> RowMaker:
    scheme = parse_label_config(studio.config)
    tasks = list(studio.tasks(1, annotated=True))
    fields = data_fields(tasks[0], scheme.text_field)
    return RowMaker(scheme, "majority", studio.emails, names, model, fields, HANDED, {2: "held out"})


def all_tasks(studio: FakeStudio) -> list[Task]:
    return [*studio.tasks(1, annotated=True), *studio.tasks(1, annotated=False)]
