"""How coders are named wherever the backend shows them (`/metrics`, MLflow, state, `agreement`).

Coders are Label Studio users, known by email. By default (CODER_IDENTITIES=pseudonym) they are shown
as stable pseudonyms: ``coder-`` and the first hex digits of an HMAC of the email under a key kept
in MODEL_DIR, the same across rounds, restarts and processes, and not reversible without the key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence

from backend.domain.annotations import CoderAnswer


class CoderNames:
    """Emails → the names shown; with no key, the emails themselves."""

    def __init__(self, key: bytes | None):
        self.key = key

    def __call__(self, coder: str) -> str:
        if self.key is None:
            return coder
        return "coder-" + hmac.new(self.key, coder.encode("utf-8"), hashlib.sha256).hexdigest()[:10]

    def answers(self, answers_by_task: Mapping) -> dict:
        """Every answer with its coder renamed."""
        return {task: [self.answer(a) for a in answers] for task, answers in answers_by_task.items()}

    def answer(self, answer: CoderAnswer) -> CoderAnswer:
        return CoderAnswer(answer.task_id, self(answer.coder), answer.codes, answer.updated_at)

    def counts(self, counts: Mapping[str, int]) -> dict[str, int]:
        return {self(coder): n for coder, n in counts.items()}

    def all(self, coders: Iterable[str]) -> list[str]:
        return [self(coder) for coder in coders]


def shown_settings(public: Mapping[str, object], names: CoderNames, coders: Sequence[str]) -> dict:
    """Public settings with TRAIN_CODERS as they are shown (for MLflow params and version.json)."""
    return {**public, "train_coders": names.all(coders)}
