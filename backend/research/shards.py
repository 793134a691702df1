"""One share of a simulation grid for a job array: every N-th (configuration, seed) pair.

The shards of a grid write their finished runs into one OUT on a shared filesystem, each run to a
file of its own; `simulate --report OUT` merges them. A SLURM job array names the shard through
its environment, so one batch script serves every array task.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from backend.research.errors import SimulationError

T = TypeVar("T")
SHARD_PATTERN = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*\Z")


@dataclass(frozen=True)
class Shard:
    """Shard `index` (1 … `count`) of a grid split `count` ways."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise SimulationError(f"shard {self.index}/{self.count}: expected I/N with 1 <= I <= N")

    @property
    def whole(self) -> bool:
        return self.count == 1

    def take(self, pairs: Sequence[T]) -> list[T]:
        """This shard's pairs: the index-th, then every count-th after it."""
        return list(pairs[self.index - 1 :: self.count])

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


WHOLE_GRID = Shard()


def parse_shard(text: str) -> Shard:
    """`--shard I/N`, like 2/3."""
    match = SHARD_PATTERN.match(text)
    if not match:
        raise SimulationError(f"--shard {text!r}: expected I/N, like 2/3 (the second of three shards)")
    return Shard(int(match[1]), int(match[2]))


def slurm_shard(environ: Mapping[str, str]) -> Shard | None:
    """The shard of a SLURM array task (`sbatch --array=1-3` or `0-2`, any step), or None outside one."""
    if "SLURM_ARRAY_TASK_ID" not in environ:
        return None
    names = "SLURM_ARRAY_TASK_ID, _COUNT, _MIN and _STEP"
    try:
        task, count = int(environ["SLURM_ARRAY_TASK_ID"]), int(environ["SLURM_ARRAY_TASK_COUNT"])
        first, step = int(environ["SLURM_ARRAY_TASK_MIN"]), int(environ.get("SLURM_ARRAY_TASK_STEP", 1))
    except (KeyError, ValueError):
        raise SimulationError(f"{names}: expected whole numbers; pass --shard I/N instead") from None
    return Shard((task - first) // max(step, 1) + 1, count)
