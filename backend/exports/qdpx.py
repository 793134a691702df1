"""A REFI-QDA project (`.qdpx`: a zip of `project.qde` and `sources/<guid>.txt`) of the coded corpus, for
MAXQDA, ATLAS.ti, NVivo and QualCoder.

- Users: each coder (as the rows name them) and one user for the model.
- CodeBook: the label config's codes (codebook.py), hints as descriptions.
- Sources: one TextSource per interview (`--source-field`, ordered by `--order-field`), else one per
  segment. Its text is each segment's question and answer; a coded segment is a PlainTextSelection over
  its answer, with one Coding per code by the coder who gave it, or by the model user for the codes
  handed over to the model (`coding-backend autocode`) on a segment no coder coded. Positions count
  characters (Unicode code points) from 0, the end exclusive, as the standard's section 10.2 and its
  examples do.
- Cases and Variables: one case per interview, with the fields that are the same for all its segments.
- Notes: the model's evidence spans. Sets: the sources holding segments the model coded (auto-coded).

The whole project is built in memory (a QDA project is read whole by the tools that open it).
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from lxml import etree

from backend.domain.tasks import Task
from backend.exports.codebook import PROJECT_NS, code_elements, code_tree, guid
from backend.exports.rows import CODERS, MODEL, RowMaker, flat_data
from backend.exports.tables import ExportError, replaced

MODEL_USER = "coding-backend model"
NS = f"{{{PROJECT_NS}}}"


@dataclass(frozen=True)
class Layout:
    """How segments become sources: the field naming their interview, the field ordering them in it, and
    the field holding the question (None: one source per segment, in task order)."""

    source_field: str | None = None
    order_field: str | None = None
    question_field: str = "question"


@dataclass(frozen=True)
class Segment:
    task_id: int
    data: dict
    row: dict


def _segments(maker: RowMaker, tasks: Sequence[Task], layout: Layout) -> dict[str, list[Segment]]:
    """Segments grouped by source, in order; a field the layout names and a task lacks is an error."""
    segments = [Segment(task.id, flat_data(task.data), maker.row(task)) for task in tasks]
    for option, name in (("--source-field", layout.source_field), ("--order-field", layout.order_field)):
        lacking = [s.task_id for s in segments if name and s.data.get(name) is None]
        if lacking:
            known = ", ".join(sorted({key for s in segments[:50] for key in s.data}))
            raise ExportError(
                f"{option} {name}: {len(lacking)} of {len(segments)} tasks lack it (task "
                f"{', '.join(map(str, lacking[:5]))}); their fields: {known}"
            )
    grouped: dict[str, list[Segment]] = {}
    for segment in segments:
        key = str(segment.data[layout.source_field]) if layout.source_field else f"task {segment.task_id}"
        grouped.setdefault(key, []).append(segment)
    for members in grouped.values():
        members.sort(key=lambda s: (_order(s.data.get(layout.order_field)), s.task_id))
    return grouped


def _order(value: object) -> tuple:
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


class ProjectWriter:
    """Builds one project's XML and source texts; GUIDs are stable per project and thing."""

    def __init__(self, maker: RowMaker, name: str):
        self.maker, self.name = maker, name
        self.now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.root = etree.Element(
            f"{NS}Project", nsmap={None: PROJECT_NS}, name=name, origin="coding-backend"
        )
        self.root.set("creationDateTime", self.now)
        self.texts: dict[str, str] = {}  # source guid → its plain text
        self.notes: list = []
        self.auto_coded: list[str] = []  # sources holding a segment the model coded
        _, self.full_names = code_tree(maker.scheme)

    def guid(self, *parts: object) -> str:
        return guid(self.name, *parts)

    def build(self, grouped: dict[str, list[Segment]], layout: Layout) -> bytes:
        users = self._users(grouped)
        tree, _ = code_tree(self.maker.scheme)
        codes = etree.SubElement(etree.SubElement(self.root, f"{NS}CodeBook"), f"{NS}Codes")
        code_elements(codes, tree, PROJECT_NS, lambda name: self.guid("code", name))
        if layout.source_field:
            self._cases(grouped, layout)
        sources = etree.SubElement(self.root, f"{NS}Sources")
        for key, members in grouped.items():
            self._source(sources, key, members, layout)
        if self.notes:
            etree.SubElement(self.root, f"{NS}Notes").extend(self.notes)
        self._sets()
        self.root.set("creatingUserGUID", users[MODEL_USER])
        return etree.tostring(self.root, xml_declaration=True, encoding="utf-8", pretty_print=True)

    def _users(self, grouped: dict[str, list[Segment]]) -> dict[str, str]:
        names = dict.fromkeys(c for ms in grouped.values() for s in ms for c in s.row["coder_codes"])
        users = {name: self.guid("user", name) for name in [*names, MODEL_USER]}
        element = etree.SubElement(self.root, f"{NS}Users")
        for name, user in users.items():
            etree.SubElement(element, f"{NS}User", guid=user, name=name)
        self.users = users
        return users

    def _cases(self, grouped: dict[str, list[Segment]], layout: Layout) -> None:
        """One case per interview, its variables the fields that every one of its segments shares."""
        skip = {layout.source_field, layout.order_field, layout.question_field, self.maker.scheme.text_field}
        fields = dict.fromkeys(k for ms in grouped.values() for s in ms for k in s.data if k not in skip)
        kinds = {field: _common_kind(grouped, field) for field in fields}
        kinds = {field: kind for field, kind in kinds.items() if kind is not None}
        if kinds:
            variables = etree.SubElement(self.root, f"{NS}Variables")
            for field, kind in kinds.items():
                etree.SubElement(
                    variables,
                    f"{NS}Variable",
                    guid=self.guid("variable", field),
                    name=field,
                    typeOfVariable=kind,
                )
        cases = etree.SubElement(self.root, f"{NS}Cases")
        for key, members in grouped.items():
            case = etree.SubElement(cases, f"{NS}Case", guid=self.guid("case", key), name=key)
            for field, kind in kinds.items():
                holder = etree.SubElement(case, f"{NS}VariableValue")
                etree.SubElement(holder, f"{NS}VariableRef", targetGUID=self.guid("variable", field))
                etree.SubElement(holder, f"{NS}{kind}Value").text = _value_text(members[0].data[field], kind)
            etree.SubElement(case, f"{NS}SourceRef", targetGUID=self.guid("source", key))

    def _source(self, sources, key: str, members: list[Segment], layout: Layout) -> None:
        source_guid = self.guid("source", key)
        source = etree.SubElement(
            sources,
            f"{NS}TextSource",
            guid=source_guid,
            name=key,
            plainTextPath=f"internal://{source_guid}.txt",
            creatingUser=self.users[MODEL_USER],
            creationDateTime=self.now,
        )
        parts, length = [], 0
        for segment in members:
            question = str(segment.data.get(layout.question_field) or "").strip()
            answer = self.maker.scheme.text_in(segment.data)
            head = f"{question}\n" if question else ""
            start = length + len(head)
            parts.append(f"{head}{answer}\n\n")
            length += len(parts[-1])
            self._selection(source, segment, start, answer)
            if segment.row["source"] == MODEL and source_guid not in self.auto_coded:
                self.auto_coded.append(source_guid)
        self.texts[source_guid] = "".join(parts)

    def _selection(self, source, segment: Segment, start: int, answer: str) -> None:
        row = segment.row
        if row["source"] not in (CODERS, MODEL):
            return
        selection = etree.SubElement(
            source,
            f"{NS}PlainTextSelection",
            guid=self.guid("task", segment.task_id),
            name=f"task {segment.task_id}",
            startPosition=str(start),
            endPosition=str(start + len(answer)),
            creationDateTime=self.now,
        )
        etree.SubElement(selection, f"{NS}Description").text = _provenance(row)
        for user, codes in self._codings(row):
            for code in codes:
                etree.SubElement(
                    selection,
                    f"{NS}Coding",
                    guid=self.guid("coding", segment.task_id, code, user),
                    creatingUser=self.users[user],
                    creationDateTime=self.now,
                ).append(etree.Element(f"{NS}CodeRef", targetGUID=self.guid("code", self.full_names[code])))
        for number, span in enumerate(row["evidence"]):
            note_guid = self.guid("evidence", segment.task_id, number)
            etree.SubElement(selection, f"{NS}NoteRef", targetGUID=note_guid)
            self.notes.append(self._note(note_guid, span))

    def _codings(self, row: dict) -> list[tuple[str, list[str]]]:
        """(user, codes): each coder's own codes; for a segment only the model coded, the model's."""
        if row["source"] == CODERS:
            return list(row["coder_codes"].items())
        columns = self.maker.code_columns()
        return [(MODEL_USER, [code for code, column in columns.items() if row[column] == 1])]

    def _note(self, note_guid: str, span: dict):
        note = etree.Element(
            f"{NS}Note",
            guid=note_guid,
            name=f"Evidence: {self.full_names.get(span['code'], span['code'])}",
            creatingUser=self.users[MODEL_USER],
            creationDateTime=self.now,
        )
        etree.SubElement(note, f"{NS}PlainTextContent").text = (
            f"“{span['text']}” (characters {span['start']}–{span['end']} of the answer) is the part whose "
            f"removal lowers the model's probability of this code most."
        )
        return note

    def _sets(self) -> None:
        if not self.auto_coded:
            return
        sets = etree.SubElement(self.root, f"{NS}Sets")
        element = etree.SubElement(
            sets, f"{NS}Set", guid=self.guid("set", "auto-coded"), name="Auto-coded by the model"
        )
        handed = ", ".join(f"{code} (version {v})" for code, v in self.maker.handed.versions.items())
        etree.SubElement(element, f"{NS}Description").text = (
            f"Sources holding segments no coder coded, coded by the model for the codes the lead handed "
            f"over to it: {handed}. Their codings are by the user '{MODEL_USER}'."
        )
        for source_guid in self.auto_coded:
            etree.SubElement(element, f"{NS}MemberSource", targetGUID=source_guid)


def _provenance(row: dict) -> str:
    if row["source"] == MODEL:
        codes = row["autocoded"].replace(";", ", ").replace("@", " by model version ")
        return f"coded by the model for the codes handed over to it: {codes} (no coder coded this segment)"
    said = f"coded by {row['coders'].replace(';', ', ')}"
    if row["n_coders"] > 1:
        agreed = "they disagreed" if row["disagreement"] else "they agreed"
        said += f"; {agreed}; final codes by the {row['rule']} rule"
    return said


def _common_kind(grouped: dict[str, list[Segment]], field: str) -> str | None:
    """The variable type of a field that holds one value per interview (None when it varies within one,
    or holds no single value): the values' one type, else Text."""
    kinds = set()
    for members in grouped.values():
        values = {repr(member.data.get(field)) for member in members}
        kind = _kind(members[0].data.get(field))
        if len(values) > 1 or kind is None:
            return None
        kinds.add(kind)
    return kinds.pop() if len(kinds) == 1 else "Text"


def _kind(value: object) -> str | None:
    """The REFI-QDA type of a variable's value (None: not a value a variable can hold)."""
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Float"
    return "Text" if isinstance(value, str) else None


def _value_text(value: object, kind: str) -> str:
    """A value as its element's text: xsd:boolean in lower case, xsd:decimal without an exponent."""
    if kind == "Boolean":
        return str(value).lower()
    if kind == "Float":
        return format(Decimal(repr(value)), "f")
    return str(value)


def write_qdpx(maker: RowMaker, tasks: Sequence[Task], layout: Layout, out: Path, name: str) -> int:
    """Write the project to `out`; returns how many segments it holds."""
    grouped = _segments(maker, tasks, layout)
    writer = ProjectWriter(maker, name)
    xml = writer.build(grouped, layout)
    with replaced(out, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("project.qde", xml)
        for source_guid, text in writer.texts.items():
            archive.writestr(f"sources/{source_guid}.txt", text.encode("utf-8"))
    return sum(len(members) for members in grouped.values())
