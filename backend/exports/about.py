"""What is written beside a table: its codebook (`<name>.codebook.csv`) and about file (`<name>.about.md`).

The about file says what a reader of the table must know to use it honestly: where each segment's codes
came from (coders, combined how; the model, which version; nobody), and what the quality figures
estimate and on which sample. Never a credential, never a coder's email unless the lead asked for names.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from backend.exports.rows import CODERS, MODEL, UNCODED, RowMaker
from backend.exports.tables import replaced

COLUMNS = {
    "task_id": "the Label Studio task id",
    "code_<code>": "1 when the segment's final codes include the code, 0 when not; empty when uncoded",
    "source": "where the final codes came from: coders, model (the serving version's decision) or uncoded",
    "coders": "the coders who coded the segment, ';'-separated (pseudonyms unless --coder-names)",
    "n_coders": "how many coders coded it",
    "rule": "how several coders' answers became the final codes (MULTI_CODER_RULE); 'single coder'",
    "disagreement": "1 when two or more coders gave different codes, 0 when they agreed; empty below two",
    "coder_codes": "each coder's own codes (JSON: coder → codes)",
    "model_version": "the version whose probabilities follow (tasks it ranked: those unlabeled at its round)",
    "p_<code>": "that version's probability for the code",
    "evidence": "the version's evidence spans (JSON: code, start, end in characters, text)",
}


@dataclass
class Tally:
    """Counts of the rows that pass through it, for the about file."""

    sources: Counter = field(default_factory=Counter)
    multi: int = 0
    disagreed: int = 0

    def count(self, rows: Iterable[dict]) -> Iterator[dict]:
        for row in rows:
            self.sources[row["source"]] += 1
            self.multi += row["n_coders"] > 1
            self.disagreed += bool(row["disagreement"])
            yield row


@dataclass(frozen=True)
class Facts:
    """What the about file names: the project, when, the serving version's record and the last round's
    monitoring (state.json), as the command line read them."""

    project: str
    written_at: str
    version: Mapping | None
    quality: Mapping | None


def codebook_rows(maker: RowMaker) -> list[dict]:
    """Per code: its column, its code, its name as coders see it, its question and its definition."""
    columns, names = maker.code_columns(), maker.scheme.names()
    return [
        {
            "column": columns[code],
            "code": code,
            "name": names.get(code, code),
            "question": tag.name,
            "description": description,
        }
        for tag in maker.scheme.tags
        for code, description in zip(tag.codes, tag.descriptions or [""] * len(tag.codes), strict=True)
    ]


def write_codebook_csv(maker: RowMaker, path: Path) -> None:
    rows = codebook_rows(maker)
    with replaced(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=["column", "code", "name", "question", "description"])
        writer.writeheader()
        writer.writerows(rows)


def about_text(facts: Facts, maker: RowMaker, tally: Tally, table: str) -> str:
    """The about file: the project, the provenance counts, the model, the estimates, the columns."""
    total = sum(tally.sources.values())
    lines = [
        f"# Label Studio project {facts.project}: the coded corpus",
        "",
        f"`{table}`: {total} segments, one row each, written {facts.written_at} by `coding-backend export`.",
        "",
        "## Where each segment's codes come from",
        "",
        f"- coders: {tally.sources[CODERS]} segments; {tally.multi} coded by two or more coders, "
        f"{tally.disagreed} of them with different codes. Several coders' answers are combined by "
        f"MULTI_CODER_RULE={maker.rule}" + _per_coder_note(maker) + ".",
        f"- model: {tally.sources[MODEL]} segments, coded by the serving model version's decisions "
        "(its probabilities at its thresholds): predictions, not codes a person gave.",
        f"- uncoded: {tally.sources[UNCODED]} segments; their code columns are empty, not 0.",
        "",
        *_model_section(facts),
        *_quality_section(facts.quality),
        "## Columns",
        "",
        f"- the task's data fields: {', '.join(maker.fields) or '(none)'}",
        *(f"- `{name}`: {meaning}" for name, meaning in COLUMNS.items()),
        "",
        "The codes, their columns and their definitions are in the codebook file beside this one.",
        "",
    ]
    return "\n".join(lines)


def _per_coder_note(maker: RowMaker) -> str:
    if maker.rule == maker.final_rule:
        return ""
    return f" (per_coder trains on every answer; a segment's one final answer here is the {maker.final_rule})"


def _model_section(facts: Facts) -> list[str]:
    version = facts.version
    if not version:
        return ["## The model", "", "No model version serves this project yet.", ""]
    settings = json.dumps(version.get("config") or {}, indent=2, sort_keys=True)
    return [
        "## The model",
        "",
        f"Version {version.get('version')} ({version.get('kind')}), made {version.get('created_at')} "
        f"from {version.get('n_labeled')} training examples. Its settings (secrets are never recorded):",
        "",
        "```json",
        settings,
        "```",
        "",
    ]


def _quality_section(quality: Mapping | None) -> list[str]:
    if not quality or not quality.get("codes"):
        return ["## Estimates per code", "", "No round has estimated the model's quality yet.", ""]
    lines = [
        "## Estimates per code",
        "",
        f"{quality.get('method', 'cross-validated')}, on the {quality.get('labeled')} coded segments of the "
        "last round. Active learning chose most of those segments (the most informative first), so these "
        "figures describe the model on them, not on the whole corpus; no interval is computed here.",
        "",
        "| code | precision | recall | F1 | positives |",
        "| --- | --- | --- | --- | --- |",
    ]
    for code, figures in quality["codes"].items():
        values = [_figure(figures.get(name)) for name in ("precision", "recall", "f1")]
        lines.append(f"| {code} | {' | '.join(values)} | {figures.get('positives', '')} |")
    return [*lines, ""]


def _figure(value: object) -> str:
    return "n/a" if value is None else f"{float(value):.2f}"


def write_about(path: Path, text: str) -> None:
    with replaced(path) as handle:
        handle.write(text)


def beside(path: Path, what: str) -> Path:
    """`<stem>.<what>` next to the table (`corpus.csv` → `corpus.codebook.csv`, `corpus.about.md`)."""
    return path.with_name(f"{path.stem}.{what}")
