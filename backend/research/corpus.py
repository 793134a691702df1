"""Coded segments from files: JSONL lines or a Label Studio JSON export, coder filters, a held-out
split, and the corpus a simulation runs on.

The command line (`train`, `rank`, `agreement`, `simulate`) reads segments only through here, so
every input problem is reported the same way: a :class:`DataError` naming the file, the line or
task, and what is wrong (the CLI prints it and exits with status 2).
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from backend.domain.annotations import CoderAnswer
from backend.domain.scheme import CodingScheme, label_matrix
from backend.research.errors import DataError

log = logging.getLogger(__name__)
NUL = "\x00"


@dataclass(frozen=True)
class Example:
    """One coded segment as one coder coded it (a segment coded twice is two examples)."""

    id: str
    text: str
    codes: tuple[str, ...]
    coder: str | None = None


def read_segments(path: Path, *, require_codes: bool) -> list[dict]:
    """Read `{"text", "codes"?, "id"?}` lines (JSONL), or rows of a CSV file with a `text` column (and
    optionally `id` and `question`), naming the file and line of any problem."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        if require_codes:
            raise DataError(f"{path}: coded segments must be JSONL (a CSV file has no code lists)")
        rows = _csv_rows(path)
    else:
        rows = _jsonl_rows(path)
    segments, with_nul = [], []
    for number, row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise DataError(f'{path}:{number}: expected an object with a "text" string')
        if require_codes and not _is_code_list(row.get("codes")):
            raise DataError(f'{path}:{number}: expected a "codes" list of strings (empty when none applies)')
        if _drop_nul(row):
            with_nul.append(number)
        row.setdefault("id", f"line-{number}")
        segments.append(row)
    if not segments:
        raise DataError(f"{path}: no segments")
    if with_nul:
        log.warning(
            "%s: NUL characters removed from %d line(s) (%s): Label Studio on PostgreSQL refuses a task "
            "that holds one",
            path,
            len(with_nul),
            ", ".join(map(str, with_nul[:10])) + (", ..." if len(with_nul) > 10 else ""),
        )
    return segments


def _drop_nul(row: dict) -> bool:
    """Remove NUL characters from a row's texts; whether there were any. They carry nothing a coder
    reads (the study's data has two, from a conversion), and PostgreSQL's text cannot hold them, so
    Label Studio on PostgreSQL fails the whole import call with a 500."""
    found = False
    for key, value in row.items():
        if isinstance(value, str) and NUL in value:
            row[key], found = value.replace(NUL, ""), True
    return found


def _jsonl_rows(path: Path) -> Iterator[tuple[int, object]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from None


def _csv_rows(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if "text" not in (reader.fieldnames or []):
            raise DataError(f'{path}: expected a header row with a "text" column')
        for row in reader:
            if any((value or "").strip() for value in row.values() if isinstance(value, str)):
                yield reader.line_num, {k: v for k, v in row.items() if k and (v or k == "text")}


def read_examples(path: Path, scheme: CodingScheme | None) -> list[Example]:
    """Coded examples from JSONL lines or a Label Studio JSON export (told apart by the first character).

    A Label Studio export needs the project's label config (`scheme`) to turn annotation results
    into codes; it yields one example per non-cancelled annotation, with the annotator's email as
    the coder when the export carries it.
    """
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with open(path, encoding="utf-8") as handle:
        first = handle.read(4096).lstrip()[:1]
    if first == "[":
        if scheme is None:
            raise DataError(
                f"{path} is a Label Studio JSON export: pass --label-config FILE.xml (the project's "
                "labeling config) so its annotations can be mapped to codes"
            )
        examples = _read_export(path, scheme)
    else:
        examples = [_example_of(row) for row in read_segments(path, require_codes=True)]
    blank = [example.id for example in examples if not example.text.strip()]
    if blank:
        raise DataError(f"{path}: {len(blank)} segment(s) have an empty text: {', '.join(blank[:5])}")
    return examples


def _is_code_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(code, str) for code in value)


def _example_of(row: dict) -> Example:
    coder = row.get("coder")
    return Example(str(row["id"]), row["text"], tuple(row["codes"]), None if coder is None else str(coder))


def _read_export(path: Path, scheme: CodingScheme) -> list[Example]:
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and "data" in t for t in tasks):
        raise DataError(f'{path}: expected a Label Studio JSON export, a list of tasks with "data"')
    examples = []
    for number, task in enumerate(tasks, start=1):
        task_id = str(task.get("id", f"task-{number}"))
        text = scheme.text_of(task)
        for annotation in task.get("annotations") or []:
            if annotation.get("was_cancelled"):
                continue
            codes = tuple(scheme.codes_of(annotation.get("result") or []))
            examples.append(Example(task_id, text, codes, _coder_of(annotation)))
    if not examples:
        raise DataError(f"{path}: no task has a submitted annotation")
    return examples


def _coder_of(annotation: dict) -> str | None:
    """The annotator: email when the export has it, else `user-<id>`."""
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        return who.get("email") or (f"user-{who['id']}" if "id" in who else None)
    return None if who is None else f"user-{who}"


def keep_coders(examples: Sequence[Example], coders: Iterable[str] | None, what: str) -> list[Example]:
    """Only the examples of `coders` (all when None); naming the coders there are when none is left."""
    if not coders:
        return list(examples)
    wanted = set(coders)
    kept = [example for example in examples if example.coder in wanted]
    if not kept:
        present = sorted({str(example.coder) for example in examples})
        raise DataError(
            f"{what} {','.join(sorted(wanted))}: no segment is coded by them "
            f"(coders in the data: {', '.join(present)})"
        )
    return kept


def keep_codes(examples: Sequence[Example], codes: Sequence[str]) -> list[Example]:
    """The examples with only `codes` (other codes, e.g. a form's "none" answer, are dropped)."""
    allowed = set(codes)
    return [replace(example, codes=tuple(c for c in example.codes if c in allowed)) for example in examples]


def held_out_split(
    examples: Sequence[Example], test_fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Split by segment id (all coders' versions of a segment fall on one side), stratified by rarest code.

    Each segment is filed under its rarest code in the data ("no code" when it has none); within
    each group a seeded shuffle sends round(test_fraction · size) segments to the test side, so
    rare codes appear on both sides whenever a group has two or more segments.
    """
    counts = Counter(code for example in examples for code in example.codes)
    first_codes: dict[str, tuple[str, ...]] = {}
    for example in examples:
        first_codes.setdefault(example.id, example.codes)
    groups: dict[str, list[str]] = {}
    for segment, codes in first_codes.items():
        rarest = min(codes, key=lambda code: (counts[code], code)) if codes else ""
        groups.setdefault(rarest, []).append(segment)
    rng = np.random.default_rng(seed)
    test_ids: set[str] = set()
    for key in sorted(groups):
        members = sorted(groups[key])
        rng.shuffle(members)
        test_ids.update(members[: round(test_fraction * len(members))])
    train = [example for example in examples if example.id not in test_ids]
    test = [example for example in examples if example.id in test_ids]
    return train, test


@dataclass(frozen=True)
class Corpus:
    """The training pool (its codes are revealed when a segment is chosen) and the test set."""

    codes: tuple[str, ...]
    pool: tuple[Example, ...]
    test: tuple[Example, ...]

    def keys(self, examples: Sequence[Example]) -> list[str]:
        """Ids naming examples in selections: `id`, or `id@coder` when the pool holds a segment twice."""
        seen = Counter(example.id for example in self.pool)
        return [e.id if seen[e.id] < 2 else f"{e.id}@{e.coder}" for e in examples]

    def matrix(self, examples: Sequence[Example]) -> np.ndarray:
        return label_matrix([example.codes for example in examples], self.codes).reshape(-1, len(self.codes))


def load_corpus(
    data: Path,
    test: Path | None,
    *,
    scheme: CodingScheme | None,
    codes: Sequence[str] | None,
    train_coders: Sequence[str] | None,
    test_coders: Sequence[str] | None,
    test_fraction: float,
    split_seed: int,
) -> Corpus:
    """Pool and test set from files: a separate test file, or a held-out split of `data` by segment.

    Coder filters apply after the split, so a lead can train on one coder and test on another
    without a segment on both sides. Segments of a separate test file are taken out of the pool.
    """
    examples = read_examples(data, scheme)
    if test is None:
        if not 0 < test_fraction < 1:
            raise DataError(f"--test-fraction must be between 0 and 1, got {test_fraction}")
        pool, held_out = held_out_split(examples, test_fraction, split_seed)
    else:
        held_out = read_examples(test, scheme)
        test_ids = {example.id for example in held_out}
        pool = [example for example in examples if example.id not in test_ids]
        if len(pool) < len(examples):
            log.info("left %d segment(s) of the test set out of the training pool", len(examples) - len(pool))
    pool = keep_coders(pool, train_coders, "--train-coders")
    held_out = keep_coders(held_out, test_coders, "--test-coders")
    chosen = choose_codes(codes, scheme, [*pool, *held_out])
    return Corpus(tuple(chosen), tuple(keep_codes(pool, chosen)), tuple(keep_codes(held_out, chosen)))


def choose_codes(given: Sequence[str] | None, scheme: CodingScheme | None, examples: Sequence[Example]):
    """The codes to learn, in column order: --codes, else the label config's, else those in the data (sorted).

    --codes may leave out codes (e.g. a form's "none" answer); without it, a code outside the
    label config is an error rather than silently dropped.
    """
    present = sorted({code for example in examples for code in example.codes})
    known = scheme.codes if scheme else present
    if given:
        unknown = [code for code in given if code not in known]
        if unknown:
            raise DataError(f"--codes: {', '.join(unknown)} not among the codes {', '.join(known)}")
        return list(given)
    stray = [code for code in present if code not in known]
    if stray:
        raise DataError(f"codes {', '.join(stray)} are not in the label config ({', '.join(known)})")
    if not known:
        raise DataError("no segment carries any code: nothing to learn")
    return list(known)


def ordered_codes(segments: Sequence[dict], given: Sequence[str] | None) -> list[str]:
    """The codes given (e.g. by --codes), or those used in the data, sorted for a stable column order."""
    if given:
        return list(given)
    return sorted({code for segment in segments for code in segment["codes"]})


def file_answers(path: Path) -> tuple[list[str], dict[str, list[CoderAnswer]], dict[str, str]]:
    """Coders' answers from JSONL lines {"id", "coder", "codes", "text"}, and each id's text; a
    coder's later line for an id wins."""
    segments = read_segments(path, require_codes=True)
    answers: dict[str, dict[str, CoderAnswer]] = {}
    texts: dict[str, str] = {}
    for number, segment in enumerate(segments, start=1):
        if not isinstance(segment.get("coder"), str) or str(segment["id"]).startswith("line-"):
            raise DataError(f'{path}: segment {number} needs an "id" and a "coder" to compare coders')
        coder = segment["coder"].strip().lower()
        by_coder = answers.setdefault(segment["id"], {})
        by_coder.pop(coder, None)  # re-inserted: each task's answers stay in line order, oldest first
        by_coder[coder] = CoderAnswer(segment["id"], coder, frozenset(segment["codes"]), f"{number:09d}")
        texts[segment["id"]] = segment["text"]
    answers_by_id = {task: list(by.values()) for task, by in answers.items()}
    return ordered_codes(segments, None), answers_by_id, texts
