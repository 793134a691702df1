"""REFI-QDA codebooks in and out: a `.qdc` (or a `.qdpx` project's codebook) ⇄ a Label Studio label config.

In: every codable code becomes a `<Choice>` of one multiple-choice question, in the codebook's order,
its description as the option's `hint`. A child code is flattened into the same question as
"Parent › Child" (the path of names, joined by PATH), so a coder sees where it sits and the way back
can rebuild the tree. What a label config cannot hold is reported, never dropped silently: a
non-codable code without children, colours, the codebook's sets.

Out: the codes of a project's label config, in its order, their hints as descriptions, the tree
rebuilt from the "›" paths. GUIDs are stable per project and code (uuid5), as the standard requires
them to be unique.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
import zipfile
from dataclasses import dataclass
from html import escape
from pathlib import Path

from lxml import etree

from backend.domain.scheme import ChoiceTag, CodingScheme
from backend.errors import BackendError

CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"
PROJECT_NS = "urn:QDA-XML:project:1.0"
PATH = " › "
GUIDS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:coding-backend:refi-qda")
MAX_BYTES = 50 * 2**20  # a codebook is small; a larger file is not one


class CodebookError(BackendError):
    """A file that is not a REFI-QDA codebook (or project) this backend can read; the message says why."""


@dataclass(frozen=True)
class CodebookCode:
    """A code of a codebook: its name, description, whether it is codable, its children."""

    name: str
    description: str = ""
    codable: bool = True
    children: tuple[CodebookCode, ...] = ()


def guid(*parts: object) -> str:
    """A stable GUID for a thing of the export (a project's code, user, source...), upper case as
    ATLAS.ti writes them."""
    return str(uuid.uuid5(GUIDS, "/".join(str(part) for part in parts))).upper()


# --- in -------------------------------------------------------------------------------------------


def read_codebook(path: Path) -> tuple[list[CodebookCode], list[str]]:
    """The codes of a `.qdc`, a `.qde` or a `.qdpx` (its project.qde), and what a label config cannot
    hold of them (notes to report)."""
    try:
        data = _codebook_bytes(Path(path))
    except OSError as exc:
        raise CodebookError(f"{path}: {exc.strerror}") from None
    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise CodebookError(f"{path}: not a REFI-QDA codebook: not XML ({exc})") from None
    if root.tag not in (f"{{{CODEBOOK_NS}}}CodeBook", f"{{{PROJECT_NS}}}Project"):
        raise CodebookError(
            f"{path}: not a REFI-QDA codebook: its root is <{etree.QName(root).localname}> in "
            f"{etree.QName(root).namespace or 'no namespace'}, not <CodeBook> in {CODEBOOK_NS} "
            f"(or <Project> in {PROJECT_NS})"
        )
    ns = etree.QName(root).namespace
    codes_element = (
        root.find(f"{{{ns}}}Codes") if ns == CODEBOOK_NS else root.find(f"{{{ns}}}CodeBook/{{{ns}}}Codes")
    )
    codes = [_code(element, ns) for element in (codes_element if codes_element is not None else [])]
    codes = [code for code in codes if code is not None]
    if not codes:
        raise CodebookError(f"{path}: the codebook holds no codes")
    notes = []
    if root.find(f".//{{{ns}}}Code[@color]") is not None:
        notes.append("the codes' colours are not carried: Label Studio's choices have none")
    if ns == CODEBOOK_NS and root.find(f"{{{ns}}}Sets") is not None:
        notes.append("the codebook's sets are not carried: a label config has no sets of codes")
    return codes, notes


def _codebook_bytes(path: Path) -> bytes:
    if path.stat().st_size > MAX_BYTES:
        raise CodebookError(f"{path}: {path.stat().st_size} bytes is too large for a codebook")
    if not zipfile.is_zipfile(path):
        return path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        names = [name for name in archive.namelist() if name.lower().endswith(".qde") and "/" not in name]
        if not names:
            raise CodebookError(f"{path}: a zip without a project.qde: not a REFI-QDA project")
        info = archive.getinfo(names[0])
        if info.file_size > MAX_BYTES:
            raise CodebookError(f"{path}: its {names[0]} is too large to read a codebook from")
        return archive.read(info)


def _code(element, ns: str) -> CodebookCode | None:
    if element.tag != f"{{{ns}}}Code":
        return None
    description = element.findtext(f"{{{ns}}}Description") or ""
    children = tuple(c for c in (_code(child, ns) for child in element) if c is not None)
    codable = (element.get("isCodable") or "true").strip().lower() in ("true", "1")
    return CodebookCode(element.get("name") or "", description.strip(), codable, children)


def label_config_from(codes: list[CodebookCode]) -> tuple[str, list[str]]:
    """A label config coding the segment's text with the codebook's codes, and what it leaves out."""
    options, notes, aliases = [], [], set()
    for path, code in _flattened(codes):
        name = PATH.join(path)
        if not code.codable:
            if not code.children:
                notes.append(f"{name!r} is not codable and has no codes under it: left out")
            continue
        alias = _alias(name, aliases)
        hint = f' hint="{escape(code.description, quote=True)}"' if code.description else ""
        options.append(f'    <Choice value="{escape(name, quote=True)}" alias="{alias}"{hint}/>')
    if not options:
        raise CodebookError("the codebook holds no codable code: nothing to code with")
    if any(len(path) > 1 for path, _ in _flattened(codes)):
        notes.append(
            f"child codes are options of the same question, named by their path ('Parent{PATH}Child')"
        )
    config = "\n".join(
        [
            "<View>",
            '  <Header value="Interview question"/>',
            '  <Text name="question" value="$question"/>',
            '  <Header value="The answer"/>',
            '  <Text name="text" value="$text"/>',
            '  <Header value="Which codes apply?"/>',
            '  <Choices name="codes" toName="text" choice="multiple" showInline="false">',
            *options,
            '    <Choice value="None of these" alias="none"/>',
            "  </Choices>",
            "</View>",
            "",
        ]
    )
    return config, notes


def _flattened(codes, path=()) -> list[tuple[tuple[str, ...], CodebookCode]]:
    found = []
    for code in codes:
        found.append(((*path, code.name), code))
        found.extend(_flattened(code.children, (*path, code.name)))
    return found


def _alias(name: str, taken: set[str]) -> str:
    """What Label Studio stores for an option: the name in letters, digits and underscores, unique."""
    ascii_name = unicodedata.normalize("NFKD", name.replace(PATH, "__").replace("ß", "ss"))
    ascii_name = ascii_name.encode("ascii", "ignore").decode()  # Körper → korper
    base = re.sub(r"\W+", "_", ascii_name, flags=re.ASCII).strip("_").lower() or "code"
    alias, n = base, 2
    while alias in taken or alias == "none":
        alias, n = f"{base}_{n}", n + 1
    taken.add(alias)
    return alias


# --- out ------------------------------------------------------------------------------------------


def code_name(tag: ChoiceTag, code: str, shown: str) -> str:
    """A code's name in a codebook: as coders see it; a yes/no question's "Yes" by its question."""
    return tag.name if len(tag.codes) == 1 and tag.none_option is not None else shown


def code_tree(scheme: CodingScheme) -> tuple[list[CodebookCode], dict[str, str]]:
    """The scheme's codes as a codebook tree (paths split at PATH), and each code's full name."""
    full, described = {}, {}
    for tag in scheme.tags:
        for code, shown, description in zip(
            tag.codes, tag.shown, tag.descriptions or [""] * len(tag.codes), strict=True
        ):
            name = code_name(tag, code, shown)
            full[code] = name
            prefix = f"{shown}. "
            described[name] = description[len(prefix) :] if description.startswith(prefix) else description
    return _tree(list(full.values()), described), full


def _tree(names: list[str], described: dict[str, str], prefix: tuple[str, ...] = ()) -> list[CodebookCode]:
    """The codes under `prefix`, in the order they first appear; a parent only named as a prefix is
    not codable."""
    heads = list(dict.fromkeys(name.split(PATH)[len(prefix)] for name in names))
    tree = []
    for head in heads:
        path = (*prefix, head)
        under = [name for name in names if tuple(name.split(PATH)[: len(path)]) == path]
        name = PATH.join(path)
        children = [n for n in under if n != name]
        tree.append(
            CodebookCode(
                head, described.get(name, ""), name in under, tuple(_tree(children, described, path))
            )
        )
    return tree


def code_elements(parent, codes: list[CodebookCode], ns: str, guid_of, path: tuple[str, ...] = ()) -> None:
    """`<Code>` elements for `codes` under `parent`, GUIDs from `guid_of(full name)`."""
    for code in codes:
        name = PATH.join((*path, code.name))
        element = etree.SubElement(
            parent,
            f"{{{ns}}}Code",
            guid=guid_of(name),
            name=code.name,
            isCodable="true" if code.codable else "false",
        )
        if code.description:
            etree.SubElement(element, f"{{{ns}}}Description").text = code.description
        code_elements(element, list(code.children), ns, guid_of, (*path, code.name))


def codebook_xml(scheme: CodingScheme, project: int) -> bytes:
    """The project's codes as a REFI-QDA codebook (`.qdc`)."""
    root = etree.Element(f"{{{CODEBOOK_NS}}}CodeBook", nsmap={None: CODEBOOK_NS}, origin="coding-backend")
    codes = etree.SubElement(root, f"{{{CODEBOOK_NS}}}Codes")
    tree, _ = code_tree(scheme)
    code_elements(codes, tree, CODEBOOK_NS, lambda name: guid(project, "code", name))
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
