"""A project of 100,000 distinct segments, built at run time from the 11,656 shared ones (issue 36 item 3).

The shared data holds 11,656 segments with 8,615 distinct texts (short answers such as "Ich heiße
Finn." recur). `grown(rows, size, seed)` keeps every segment whose text is new as it is (same id,
so the coded segments of `labels_coder_b.jsonl` stay findable), and makes up the rest from real
sentences, deterministically for a seed:

- a repeated text, and each further segment up to `size`, is a *variant* of a segment drawn at
  random (its question, its id followed by ``~<n>``): its own text with one sentence of another
  drawn segment appended (half of the variants) or put before it (the other half): what a child
  who says a little more, or starts with something else, would answer;
- a variant whose text exists already is drawn again, so every text is distinct (checked at the end:
  `DataError` otherwise).

Nothing is written to the repository: the rows live in memory (`bench/bench_loop.py --segments
100000`, `bench/bench_growth.py`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from backend.research.errors import DataError

SIZE = 100_000
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    """A text's sentences (split after ., ! or ? and a space); none for a blank text."""
    return [part.strip() for part in SENTENCE_END.split(text) if part.strip()]


def grown(rows: Sequence[dict], size: int = SIZE, seed: int = 0) -> list[dict]:
    """`size` segments with distinct texts: the rows whose text is new as they are, then variants."""
    rng = np.random.default_rng(seed)
    donors = [found for row in rows if (found := sentences(row["text"]))]
    if not donors:
        raise DataError("no segment has a sentence to vary the others with")
    seen: set[str] = set()
    out: list[dict] = []
    made = 0

    def variant(base: dict) -> dict:
        nonlocal made
        while True:
            donor = donors[int(rng.integers(len(donors)))]
            extra = donor[int(rng.integers(len(donor)))]
            text = f"{base['text']} {extra}" if rng.random() < 0.5 else f"{extra} {base['text']}"
            text = text.strip()
            if text not in seen:
                made += 1
                return {**base, "id": f"{base['id']}~{made}", "text": text}

    for row in rows[:size]:
        kept = row if row["text"] not in seen else variant(row)
        seen.add(kept["text"])
        out.append(kept)
    while len(out) < size:
        made_row = variant(rows[int(rng.integers(len(rows)))])
        seen.add(made_row["text"])
        out.append(made_row)
    if len({row["text"] for row in out}) != len(out):
        raise DataError("the grown corpus repeats a text")
    return out
