"""Rows as CSV, JSON lines or Parquet, written in chunks so that a large project exports in bounded memory.

A file is written beside its target under a temporary name and renamed into place when complete: a
failed export never leaves half a table where the last good one was.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from backend.errors import BackendError

FORMATS = ("csv", "jsonl", "parquet", "qdpx")
SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".qdpx": "qdpx"}
CHUNK = 2000  # rows per Parquet row group and per write


class ExportError(BackendError):
    """An export that cannot be written as asked: the message names the file or the option."""


def format_of(path: Path, given: str | None) -> str:
    """The format asked for, else the one the file's suffix names."""
    if given is not None:
        if given not in FORMATS:
            raise ExportError(f"--format {given!r}: unknown; use one of {', '.join(FORMATS)}")
        return given
    if path.suffix.lower() not in SUFFIXES:
        raise ExportError(
            f"{path}: cannot tell the format from the suffix {path.suffix or '(none)'!r}; "
            f"name a file .csv, .jsonl, .parquet or .qdpx, or give --format"
        )
    return SUFFIXES[path.suffix.lower()]


def _partial(path: Path, mode: str):
    """The temporary file beside `path`, open for writing, or ExportError saying why it cannot be."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    if path.is_dir():
        raise ExportError(f"cannot write {path}: it is a folder")
    try:
        return partial, open(partial, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""}))
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror}") from None


@contextmanager
def replaced(path: Path, mode: str = "w") -> Iterator:
    """An open temporary file beside `path` that becomes `path` when the block ends without an error."""
    partial, handle = _partial(path, mode)
    try:
        with handle:
            yield handle
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def check_writable(path: Path) -> None:
    """Fail before any work when `path` cannot be written (a missing folder, no permission)."""
    partial, handle = _partial(path, "wb")
    handle.close()
    partial.unlink()


def cell(value: object) -> object:
    """A value as one table cell: lists and objects as JSON, booleans as 1/0, None as missing."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def write_csv(rows: Iterable[dict], columns: Sequence[str], path: Path) -> int:
    """UTF-8 CSV with a header; missing values are empty cells (NA in R, NaN in pandas)."""
    count = 0
    with replaced(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: cell(value) for key, value in row.items()})
            count += 1
    return count


def write_jsonl(rows: Iterable[dict], columns: Sequence[str], path: Path) -> int:
    """One JSON object per line, its keys in column order, lists and objects kept as such."""
    count = 0
    with replaced(path) as handle:
        for row in rows:
            handle.write(json.dumps({key: row.get(key) for key in columns}, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_parquet(rows: Iterable[dict], columns: Sequence[str], path: Path, kinds: Mapping[str, str]) -> int:
    """Parquet in row groups of CHUNK rows. A column's type is its kind (int, float, bool, text) when
    given, else taken from the first chunk (a column without any value there, or of mixed types, is text)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    count, writer, schema = 0, None, None
    with replaced(path, "wb") as handle:
        iterator = iter(rows)
        while chunk := [
            {key: cell_for_parquet(row.get(key)) for key in columns}
            for row in itertools.islice(iterator, CHUNK)
        ]:
            if schema is None:
                schema = pa.schema([(name, _arrow_type(chunk, name, kinds.get(name))) for name in columns])
                writer = pq.ParquetWriter(handle, schema)
            writer.write_table(
                pa.Table.from_pylist([_as_schema(row, schema) for row in chunk], schema=schema)
            )
            count += len(chunk)
        if writer is None:
            schema = pa.schema([(name, _arrow_type([], name, kinds.get(name))) for name in columns])
            writer = pq.ParquetWriter(handle, schema)
        writer.close()
    return count


def cell_for_parquet(value: object) -> object:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value


def _arrow_type(chunk: list[dict], name: str, kind: str | None):
    import pyarrow as pa

    if kind is not None:
        return {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "text": pa.string()}[kind]
    kinds = {type(row[name]) for row in chunk if row[name] is not None}
    if kinds == {bool}:
        return pa.bool_()
    if kinds == {int}:
        return pa.int64()
    if kinds and kinds <= {int, float}:
        return pa.float64()
    return pa.string()


def _as_schema(row: dict, schema) -> dict:
    """A row's values as its columns' types: text columns take anything as text; a value that does not
    fit a number or true/false column is an error (never silently missing)."""
    import pyarrow as pa

    fixed = {}
    for field in schema:
        value = row[field.name]
        if value is not None and field.type == pa.string() and not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False)
        elif value is not None and field.type != pa.string() and _misfits(value, field.type == pa.bool_()):
            raise ExportError(
                f"column {field.name} holds {value!r} in task {row.get('task_id')} where earlier tasks hold "
                f"{field.type} values: export as csv or jsonl, which keep each value as it is"
            )
        fixed[field.name] = value
    return fixed


def _misfits(value: object, boolean: bool) -> bool:
    if boolean:
        return not isinstance(value, bool)
    return isinstance(value, bool) or not isinstance(value, int | float)


def write_table(
    rows: Iterable[dict], columns: Sequence[str], path: Path, fmt: str, kinds: Mapping[str, str]
) -> int:
    """Write `rows` as `fmt` (csv, jsonl or parquet); returns how many rows were written. `kinds`: the
    types of the columns that have one whatever the data (Parquet's schema)."""
    if fmt == "parquet":
        return write_parquet(rows, columns, path, kinds)
    return (write_csv if fmt == "csv" else write_jsonl)(rows, columns, path)
