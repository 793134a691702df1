"""What is written beside a table: its codebook (`<name>.codebook.csv`) and about file (`<name>.about.md`).

The about file says what a reader of the table must know to use it honestly: where each segment's codes
came from (coders, combined how; the model, for which handed-over codes, on which validation estimate;
nobody), and what the quality figures estimate and on which sample. Never a credential, never a
coder's email unless the lead asked for names.
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
    "code_<code>": "1 when the segment's final codes include it, 0 when not; empty when nobody decided it",
    "source": "where the final codes came from: coders, model (codes handed over to it) or uncoded",
    "coders": "the coders who coded the segment, ';'-separated (pseudonyms unless --coder-names)",
    "n_coders": "how many coders coded it",
    "rule": "how several coders' answers became the final codes (MULTI_CODER_RULE); 'single coder'",
    "disagreement": "1 when two or more coders gave different codes, 0 when they agreed; empty below two",
    "coder_codes": "each coder's own codes (JSON: coder → codes)",
    "autocoded": "the codes the model decided here after the lead handed them over, as code@version",
    "validation": "'held out' or 'released' for a segment of the blind validation sample; empty otherwise",
    "model_version": "the version whose suggestion follows (tasks it ranked: those unlabeled at its round)",
    "suggested_codes": "that version's suggestion, the codes it decided (';'-separated): a prediction",
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
    handed: Mapping[str, Mapping] = field(default_factory=dict)  # code → its AutoCoded record
    validation: Mapping | None = None  # the blind sample's last estimates (storage/validation.py)


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
        f"- model: {tally.sources[MODEL]} segments no coder coded, coded by the model for the codes the "
        "lead handed over to it (`coding-backend autocode`, see below); their other codes are empty. "
        "Machine codes, not codes a person gave.",
        f"- uncoded: {tally.sources[UNCODED]} segments; their code columns are empty, not 0. The model's "
        "suggestion for them is in `suggested_codes` and `p_<code>`: predictions, not codes.",
        "",
        *_handed_section(facts.handed),
        *_model_section(facts),
        *_validation_section(facts.validation),
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


def _handed_section(handed: Mapping[str, Mapping]) -> list[str]:
    """Each code handed over: the version that decided, when, the targets, and the blind-sample
    estimate the hand-over rests on (a random sample: these figures do describe the uncoded rest)."""
    if not handed:
        return ["## Codes handed over to the model", "", "None: every final code was given by a coder.", ""]
    lines = [
        "## Codes handed over to the model",
        "",
        "Each rests on the model's precision and recall on the blind validation sample (a uniform random "
        "sample of the segments uncoded when it was drawn), with 95 % intervals; the lead's targets are "
        "what each interval's lower bound had to reach.",
        "",
        "| code | version | decided | segments | coded 1 | precision (95 % CI) | recall (95 % CI) "
        "| targets |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for code, record in handed.items():
        estimate = record.get("estimate") or {}
        precision, recall = _interval(estimate.get("precision")), _interval(estimate.get("recall"))
        targets = f"precision ≥ {record.get('min_precision')}, recall ≥ {record.get('min_recall')}"
        lines.append(
            f"| {code} | {record.get('version')} | {record.get('decided_at')} | "
            f"{len(record.get('task_ids') or [])} | {sum(record.get('decisions') or [])} | "
            f"{precision} | {recall} | {targets} |"
        )
    return [*lines, ""]


def _interval(figure: Mapping | None) -> str:
    if not figure or figure.get("estimate") is None:
        return "n/a"
    low, high = _figure(figure["low"]), _figure(figure["high"])
    return f"{_figure(figure['estimate'])} ({low}–{high}, n={figure['n']})"


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


def _validation_section(estimates: Mapping | None) -> list[str]:
    """The model's figures on the blind validation sample: what it estimates on the uncoded rest."""
    title = "## Estimates per code on the blind validation sample"
    if not estimates or not estimates.get("codes"):
        return [title, "", "No validation sample has been coded yet (`coding-backend validate`).", ""]
    held = (
        "held out of training" if estimates.get("held_out") else "released into training: no longer held out"
    )
    lines = [
        title,
        "",
        f"Version {estimates.get('version')}, on the {estimates.get('coded')} coded segments of the sample "
        f"({held}), computed {estimates.get('computed_at')}. The sample is a uniform random draw from the "
        "segments uncoded when it was drawn, so these figures, with their 95 % intervals, estimate the "
        "model's precision and recall on the uncoded rest, and the code's share of the whole corpus "
        "(prediction-powered inference, the sample alone beside it).",
        "",
        "| code | precision | recall | F1 | share of the corpus (PPI) | share (sample alone) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for code, figures in estimates["codes"].items():
        prevalence = figures.get("prevalence") or {}
        values = [_interval(figures.get(name)) for name in ("precision", "recall", "f1")]
        values += [_interval(prevalence.get("ppi")), _interval(prevalence.get("classical"))]
        lines.append(f"| {code} | {' | '.join(values)} |")
    return [*lines, ""]


def _quality_section(quality: Mapping | None) -> list[str]:
    if not quality or not quality.get("codes"):
        return ["## Estimates per code", "", "No round has estimated the model's quality yet.", ""]
    lines = [
        "## Estimates per code (cross-validated, optimistic)",
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
