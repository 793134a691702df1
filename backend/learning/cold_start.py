"""The codebook cold start: which segments to code first before any model exists.

Until the first round, a queue in import order reaches rare codes late, so the first models cannot
learn them. A codebook defines every code; the form carries those definitions as `hint`s. Embedded
with the base body, each definition ranks the pool by cosine similarity. The order takes the most
similar segment of each code in turn (round robin, so every code is reached early), skips a
segment nearly identical to one already taken (diversity), and ranks the rest by their best
similarity to any code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEAR_DUPLICATE = 0.95  # cosine similarity above which a segment repeats one already taken


@dataclass(frozen=True)
class CodebookRanking:
    """Pool positions, first to code first, and each segment's similarity to each code."""

    order: np.ndarray
    similarity: np.ndarray  # (segments, codes), cosine


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def codebook_ranking(
    pool: np.ndarray, definitions: np.ndarray, per_code: int, near_duplicate: float = NEAR_DUPLICATE
) -> CodebookRanking:
    """Rank the pool's embeddings by the codes' definitions' embeddings (see the module's doc).

    `per_code` segments of each code are taken in turn; then the rest by best similarity."""
    pool, definitions = _unit(np.asarray(pool, float)), _unit(np.asarray(definitions, float))
    similarity = pool @ definitions.T
    by_code = [list(np.argsort(-similarity[:, j], kind="stable")) for j in range(len(definitions))]
    taken: list[int] = []
    chosen = np.zeros(len(pool), dtype=bool)
    for _ in range(per_code):
        for candidates in by_code:
            pick = _next_distinct(candidates, chosen, pool, taken, near_duplicate)
            if pick is not None:
                taken.append(pick)
                chosen[pick] = True
    rest = [i for i in np.argsort(-similarity.max(axis=1, initial=-1), kind="stable") if not chosen[i]]
    return CodebookRanking(np.array(taken + rest, dtype=np.int64), similarity)


def _next_distinct(
    candidates: list[int], chosen: np.ndarray, pool, taken: list[int], near: float
) -> int | None:
    """The code's most similar segment not taken yet and not a near-duplicate of one taken."""
    while candidates:
        candidate = candidates.pop(0)
        if chosen[candidate]:
            continue
        if taken and float((pool[taken] @ pool[candidate]).max()) > near:
            continue
        return int(candidate)
    return None
