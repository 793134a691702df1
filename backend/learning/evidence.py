"""Evidence for a suggested code: the part of a segment that raises the code's probability most.

Occlusion: a segment is cut into units (clauses; a long clause into pieces of a few words), each
unit is removed in turn, and the model scores every shortened text. The unit whose removal drops
a suggested code's probability most is that code's evidence, when the drop is positive. It works
with any model that scores texts (the differentiable head is not needed), and its cost is one
batch of (units per segment) texts, so it is computed where coders look: the queue head a round
writes, and `/predict`.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# a clause ends at punctuation and a space, but not at the period of an ordinal ("1. Mai") or of a
# one-letter abbreviation ("z.B.")
CLAUSE_END = re.compile(r"(?:[!?;:,…]|(?<!\d)(?<!\b\w)\.)+[\"'“”»«)]*\s+|\n+")
MIN_DROP = 0.01  # a smaller drop is noise (another batch, bf16), not evidence
WORD = re.compile(r"\S+")
LONG_CLAUSE_WORDS = 12  # a longer clause is cut into pieces of PIECE_WORDS words
PIECE_WORDS = 8
SHORT_PIECE_WORDS = 4  # a segment of one clause: pieces of this many words when it has more than 5

ScoreTexts = Callable[[list[str]], np.ndarray]  # texts → (n, codes) probabilities


@dataclass(frozen=True)
class Span:
    """Characters [start, end) of a segment that raise a code's probability (the code's position in
    the scheme), and how much removing them drops it. Offsets count as Label Studio's do (UTF-16
    code units, as JavaScript strings): the same as Python's but after a character beyond the BMP."""

    start: int
    end: int
    text: str
    code: int
    drop: float


def text_units(text: str) -> list[tuple[int, int]]:
    """The segment's units as character ranges, whitespace trimmed: its clauses, a long clause cut
    into pieces of a few words; a segment of one clause, into pieces of fewer words."""
    units, start = [], 0
    for match in CLAUSE_END.finditer(text):
        units.extend(_pieces(text, start, match.end(), LONG_CLAUSE_WORDS, PIECE_WORDS))
        start = match.end()
    units.extend(_pieces(text, start, len(text), LONG_CLAUSE_WORDS, PIECE_WORDS))
    if len(units) == 1:
        units = _pieces(text, *units[0], SHORT_PIECE_WORDS + 1, SHORT_PIECE_WORDS)
    return units


def _pieces(text: str, start: int, end: int, longest: int, size: int) -> list[tuple[int, int]]:
    """[start, end) trimmed, or cut into pieces of about `size` words when it has over `longest`."""
    words = [(start + m.start(), start + m.end()) for m in WORD.finditer(text[start:end])]
    if not words:
        return []
    if len(words) <= longest:
        return [(words[0][0], words[-1][1])]
    count = -(-len(words) // size)
    bounds = np.linspace(0, len(words), count + 1).round().astype(int)
    return [(words[a][0], words[b - 1][1]) for a, b in itertools.pairwise(bounds)]


def without(text: str, start: int, end: int) -> str:
    """The text with [start, end) removed (one space where it was)."""
    return f"{text[:start].rstrip()} {text[end:].lstrip()}".strip()


def find_evidence(
    texts: Sequence[str], proba: np.ndarray, suggested: np.ndarray, score_texts: ScoreTexts
) -> list[list[Span]]:
    """Per segment, one span per suggested code whose removal lowers its probability by MIN_DROP or
    more (none for a segment of a single unit: all of it would be the evidence). `proba` and
    `suggested` are the segments' probabilities and decisions; `score_texts` scores the shortened
    texts in one call."""
    units = [text_units(text) if suggested[i].any() else [] for i, text in enumerate(texts)]
    units = [found if len(found) > 1 else [] for found in units]
    variants = [without(texts[i], a, b) for i, found in enumerate(units) for a, b in found]
    if not variants:
        return [[] for _ in texts]
    scores = np.asarray(score_texts(variants))
    spans, row = [], 0
    for i, found in enumerate(units):
        drops = proba[i][np.newaxis, :] - scores[row : row + len(found)]
        row += len(found)
        spans.append(_best_spans(texts[i], found, drops, suggested[i]) if found else [])
    return spans


def spans_of_each(
    texts: Sequence[str], proba: np.ndarray, suggested: np.ndarray, score_texts: ScoreTexts
) -> Callable[[int], list[Span]]:
    """Segment i's spans, found when asked (a scoring call per segment: a queue head, written one
    task at a time)."""
    return lambda i: find_evidence([texts[i]], proba[i : i + 1], suggested[i : i + 1], score_texts)[0]


def spans_of_all(
    texts: Sequence[str], proba: np.ndarray, suggested: np.ndarray, score_texts: ScoreTexts
) -> Callable[[int], list[Span]]:
    """Segment i's spans, all segments' found in one scoring call when the first is asked (a
    `/predict` answer, sent at once)."""
    found = functools.cache(lambda: find_evidence(texts, proba, suggested, score_texts))
    return lambda i: found()[i]


def _best_spans(
    text: str, units: list[tuple[int, int]], drops: np.ndarray, suggested: np.ndarray
) -> list[Span]:
    spans = []
    for code in np.flatnonzero(suggested):
        best = int(np.argmax(drops[:, code]))
        if drops[best, code] >= MIN_DROP:
            start, end = units[best]
            drop = round(float(drops[best, code]), 6)
            spans.append(Span(_utf16(text, start), _utf16(text, end), text[start:end], int(code), drop))
    return spans


def _utf16(text: str, position: int) -> int:
    """A Python string position as a JavaScript one."""
    return len(text[:position].encode("utf-16-le")) // 2
