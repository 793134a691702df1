"""Files shipped inside the package (they are in the wheel): the label configs, the demo segments and
the research harness's example (made-up coded segments for `simulate --example`).

Read through :mod:`importlib.resources`, so they are found wherever the package is installed. The
label configs live in the checkout's top-level `label_config/` folder, where a lead looks for the
form to paste into Label Studio; the wheel (and an editable install) holds them as the package
`backend.resources.label_configs` (setup.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib.resources import as_file, files
from pathlib import Path

LABEL_CONFIGS = ("interview_coding", "interview_coding_evidence", "generic_multilabel")


def label_config(name: str = "interview_coding") -> str:
    """A shipped label config (XML): the study's form, or the smallest one the backend works with."""
    if name not in LABEL_CONFIGS:
        raise ValueError(f"no shipped label config {name!r}; there are {', '.join(LABEL_CONFIGS)}")
    return files(f"{__name__}.label_configs").joinpath(f"{name}.xml").read_text(encoding="utf-8")


@contextlib.contextmanager
def demo_segments() -> Iterator[Path]:
    """The demo's sample segments (JSONL) as a file on disk, for as long as the block runs."""
    with as_file(files(__name__).joinpath("demo", "segments.jsonl")) as path:
        yield Path(path)


@contextlib.contextmanager
def example_inputs() -> Iterator[tuple[Path, Path]]:
    """`simulate --example`'s coded segments (JSONL: 80 made up for the study's form, coded by
    coder-a, 16 of them again by coder-b) and the study's form, as files for as long as the block runs."""
    form = files(f"{__name__}.label_configs").joinpath("interview_coding.xml")
    with as_file(files(__name__).joinpath("example", "coded.jsonl")) as data, as_file(form) as config:
        yield Path(data), Path(config)
