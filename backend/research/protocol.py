"""The study's protocol: how many segments start labeled, how many each round adds, and what is
measured (macro-F1 and per-code F1 on the test set)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import f1_score

from backend.research.corpus import Corpus
from backend.research.errors import SimulationError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Protocol:
    """How many segments start labeled, are added per round, and how many rounds; the seeds to repeat with."""

    initial: int
    batch: int
    rounds: int
    seeds: tuple[int, ...]
    initial_set: str = "random"  # or "codebook": the segments most like the codes' definitions
    validation: int = 0  # pool segments held out as a blind validation sample (research/validation.py)

    @property
    def needed(self) -> int:
        return self.initial + self.batch * self.rounds + self.validation


def protocol_text(protocol: Protocol, corpus: Corpus, source: str) -> str:
    """One paragraph for summary.md: data, split and protocol."""
    return (
        f"Data: {source}. Training pool {len(corpus.pool)} segments, test set {len(corpus.test)}; codes "
        f"{', '.join(corpus.codes)}. Protocol: {protocol.initial} {_initial_text(protocol)}, then "
        f"{protocol.rounds} round(s) of {protocol.batch} chosen by each configuration's query "
        "strategy from its own predictions; after every round a model is trained from scratch and "
        "evaluated on the test set. "
        + _validation_text(protocol)
        + f"Seeds: {', '.join(map(str, protocol.seeds))} (a seed fixes the initial set and training)."
    )


def _validation_text(protocol: Protocol) -> str:
    if not protocol.validation:
        return ""
    return (
        f"A blind validation sample of {protocol.validation} segments, drawn per seed uniformly from the "
        "pool after the initial set, is held out of training and of the query; every round's model is "
        "measured on it as the live backend measures its sample. "
    )


def _initial_text(protocol: Protocol) -> str:
    if protocol.initial_set == "codebook":
        return (
            "segments chosen by the codebook (the codes' definitions, embedded with the base body; "
            "the same for every seed)"
        )
    return "random segments"


def check_protocol(protocol: Protocol, corpus: Corpus) -> None:
    """Refuse a protocol the data cannot carry, saying what it needs and what there is."""
    if protocol.initial < 2 or protocol.batch < 1 or protocol.rounds < 0 or protocol.validation < 0:
        raise SimulationError(
            "need --initial of at least 2, --batch of at least 1, --rounds and --validation of 0 or more"
        )
    if not protocol.seeds:
        raise SimulationError("--seeds: give at least one seed")
    if len(corpus.pool) < protocol.needed:
        raise SimulationError(
            f"too few training segments: --initial {protocol.initial} + --rounds {protocol.rounds} x "
            f"--batch {protocol.batch}{_plus_validation(protocol)} needs {protocol.needed}, "
            f"the training pool holds {len(corpus.pool)}"
        )
    if not corpus.test:
        raise SimulationError("the test set is empty")
    missing = [
        code for code, n in zip(corpus.codes, corpus.matrix(corpus.test).sum(axis=0), strict=True) if not n
    ]
    if missing:
        log.warning("no test segment carries %s: F1 of such a code is 0 by convention", ", ".join(missing))


def _plus_validation(protocol: Protocol) -> str:
    return f" + --validation {protocol.validation}" if protocol.validation else ""


def per_code_f1(
    truth: np.ndarray, predicted: np.ndarray, codes: Sequence[str], undefined: float = 0.0
) -> dict[str, float]:
    """macro_f1 and f1_<code>. F1 of a code neither present nor predicted is `undefined`: 0 in the
    study's tables; NaN leaves the code out of the macro mean (where agreeing on its absence is no
    failure, as between coders)."""
    scores = f1_score(truth, predicted, average=None, zero_division=undefined)
    return {
        "macro_f1": float(np.nanmean(scores)) if not np.isnan(scores).all() else float("nan"),
        **{f"f1_{c}": float(s) for c, s in zip(codes, scores, strict=True)},
    }
