"""Label Studio config ⇄ ordered codes ⇄ label matrix: the one place that maps between them.

A label config may hold several ``<Choices>`` tags bound to one ``<Text>``; all their options
form one multi-label problem. A code is the option's value, prefixed with its tag name
(``tag:option``) only when the same value appears in more than one tag. Predictions are written
back per tag (see ``studio/predictions.py``).

An option that answers "none of these" (its value or alias among NONE_CHOICES: none, no, none of
these) is not a code but the absence of the tag's codes: a coder who picks it assigns none, and a
prediction without any of the tag's codes picks it. A yes/no question is therefore one code.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

from backend.errors import BackendError

DEFAULT_NONE_CHOICES = ("none", "no", "none of these")


class UnknownCodeError(BackendError, ValueError):
    """A segment carries a code the project does not define."""

    http_status = 422  # well-formed, but not coded with the project's codes


class LabelConfigError(BackendError, ValueError):
    """The label config cannot be used for coding; the message says why."""

    http_status = 422  # well-formed JSON whose label config cannot be coded with


@dataclass(frozen=True)
class ChoiceTag:
    """One ``<Choices>`` control: its name, the Text it codes, the options that are codes and their
    codes, and the option a prediction checks for none of them (None when it has no such option;
    with several, the first)."""

    name: str
    to_name: str
    options: tuple[str, ...]
    codes: tuple[str, ...]
    multiple: bool
    none_option: str | None = None
    descriptions: tuple[str, ...] = ()  # per code: its shown value and `hint` (the codebook's definition)
    shown: tuple[str, ...] = ()  # per code: the option's value as coders see it


@dataclass(frozen=True)
class EvidenceTag:
    """A ``<Labels>`` tag on the coded text whose labels name codes: predictions mark each suggested
    code's evidence with it (learning/evidence.py). `labels` maps a code to its label."""

    name: str
    labels: dict[str, str]


@dataclass(frozen=True)
class CodingScheme:
    """The usable ``<Choices>`` tags of a label config, the task field holding the text, and the
    evidence tag when the form has one."""

    tags: tuple[ChoiceTag, ...]
    text_field: str
    evidence: EvidenceTag | None = None

    @property
    def codes(self) -> list[str]:
        return [code for tag in self.tags for code in tag.codes]

    def evidence_mask(self) -> np.ndarray:
        """Per code, whether the evidence tag has a label for it (all False without the tag)."""
        labels = self.evidence.labels if self.evidence else {}
        return np.array([code in labels for code in self.codes], dtype=bool)

    def names(self) -> dict[str, str]:
        """Each code as coders see it in the form (its option's value), for pages that name codes."""
        return {code: shown for tag in self.tags for code, shown in zip(tag.codes, tag.shown, strict=False)}

    def codebook(self) -> dict[str, str]:
        """Each code's definition from the form ("<shown value>. <hint>") for the codes that have a
        `hint`: what a codebook says of them, for the cold start (learning/cold_start.py)."""
        return {
            code: description
            for tag in self.tags
            for code, description in zip(tag.codes, tag.descriptions, strict=False)
            if description
        }

    def text_of(self, task: dict) -> str:
        """The segment text of a Label Studio task ('' when missing)."""
        return self.text_in(task.get("data") or {})

    def text_in(self, data: dict) -> str:
        """The segment text in a task's data ('' when missing)."""
        value = data.get(self.text_field)
        return value if isinstance(value, str) else ""

    def codes_of(self, result: Iterable[dict]) -> list[str]:
        """The codes chosen in an annotation result (choices of other tags are ignored)."""
        by_name = {tag.name: tag for tag in self.tags}
        chosen = []
        for item in result or []:
            tag = by_name.get(item.get("from_name"))
            if tag is None or item.get("type", "choices") != "choices":
                continue
            for option in (item.get("value") or {}).get("choices") or []:
                if option in tag.options:
                    chosen.append(tag.codes[tag.options.index(option)])
        return chosen


def parse_label_config(xml: str, none_choices: Iterable[str] = DEFAULT_NONE_CHOICES) -> CodingScheme:
    """The coding scheme of a label config, or LabelConfigError naming what is missing.

    `none_choices`: the values or aliases (any case) of options that mean "none of these"."""
    from label_studio_sdk.label_interface import LabelInterface
    from label_studio_sdk.label_interface.control_tags import ChoicesTag, LabelsTag
    from label_studio_sdk.label_interface.object_tags import TextTag

    if not isinstance(xml, str) or not xml.strip():
        raise LabelConfigError("the label config is empty")
    try:
        interface = LabelInterface(xml)
    except Exception as exc:  # the SDK raises several XML/validation error types
        raise LabelConfigError(f"the label config is not valid XML: {exc}") from None
    texts = {obj.name: obj for obj in interface.objects if isinstance(obj, TextTag)}
    usable = [
        control
        for control in interface.controls
        if isinstance(control, ChoicesTag) and control.to_name and control.to_name[0] in texts
    ]
    if not usable:
        raise LabelConfigError(
            "the label config has no <Choices> tag bound to a <Text> tag: nothing this backend can code"
        )
    to_name = usable[0].to_name[0]
    usable = [control for control in usable if control.to_name[0] == to_name]
    value = texts[to_name].value or ""
    if not value.startswith("$"):
        raise LabelConfigError(
            f'<Text name="{to_name}"> must take its value from the task data, like "$text"'
        )
    negative = {choice.strip().casefold() for choice in none_choices}
    for control in usable:
        if not control.labels:
            raise LabelConfigError(f'<Choices name="{control.name}"> has no <Choice> options')
    nones = {control.name: _none_options(control, negative) for control in usable}
    coded = {
        control.name: tuple(o for o in control.labels if o not in nones[control.name]) for control in usable
    }
    seen = Counter(option for options in coded.values() for option in options)
    tags = []
    for control in usable:
        options, none_options = coded[control.name], nones[control.name]
        if not options:
            raise LabelConfigError(
                f'<Choices name="{control.name}"> has only "none of these" options '
                f"({', '.join(none_options)}; NONE_CHOICES): nothing to code"
            )
        codes = tuple(f"{control.name}:{o}" if seen[o] > 1 else o for o in options)
        none_option = none_options[0] if none_options else None  # the one a prediction checks
        yes_no = not control.is_multiple_choice and none_option is not None and len(options) == 1
        descriptions = tuple(_description(control, option, named=not yes_no) for option in options)
        shown = tuple(_shown(control, option) for option in options)
        tags.append(
            ChoiceTag(
                control.name,
                to_name,
                options,
                codes,
                control.is_multiple_choice,
                none_option,
                descriptions,
                shown,
            )
        )
    labels_tags = [c for c in interface.controls if isinstance(c, LabelsTag) and to_name in (c.to_name or [])]
    return CodingScheme(tuple(tags), value[1:], _evidence_tag(tags, labels_tags))


def _evidence_tag(tags: list[ChoiceTag], labels_tags: list) -> EvidenceTag | None:
    """The first ``<Labels>`` tag on the coded text with a label named like a code, its option's
    stored name (alias, else value) or its shown value, mapping those codes to their labels."""
    for control in labels_tags:
        names = set(control.labels)
        labels = {
            code: name
            for tag in tags
            for option, code, shown in zip(tag.options, tag.codes, tag.shown, strict=True)
            for name in (option, code, shown)
            if name in names
        }
        if labels:
            return EvidenceTag(control.name, labels)
    return None


def _shown(control, option: str) -> str:
    """The option's value as coders see it (its stored name is the alias, when it has one)."""
    attributes = getattr(control.labels_attrs.get(option), "attr", None) or {}
    return str(attributes.get("value") or option).strip()


def _description(control, option: str, named: bool) -> str:
    """ "<shown value>. <hint>" of an option with a `hint` (the hint alone for a yes/no question's
    "Yes", which means nothing apart from its question), else ''."""
    attributes = getattr(control.labels_attrs.get(option), "attr", None) or {}
    hint = str(attributes.get("hint") or "").strip()
    if not hint or not named:
        return hint
    return f"{_shown(control, option)}. {hint}"


def _none_options(control, negative: set[str]) -> tuple[str, ...]:
    """The options whose stored name (alias) or shown value is one of `negative`."""
    found = []
    for option in control.labels:
        attributes = getattr(control.labels_attrs.get(option), "attr", None) or {}
        names = {option, str(attributes.get("value", option)), str(attributes.get("alias", option))}
        if any(name.strip().casefold() in negative for name in names):
            found.append(option)
    return tuple(found)


def label_matrix(code_lists: Iterable[Iterable[str]], codes: Sequence[str]) -> np.ndarray:
    """(n, len(codes)) 0/1 matrix; an empty list is a segment where no code applies."""
    column = {code: j for j, code in enumerate(codes)}
    rows = list(code_lists)
    matrix = np.zeros((len(rows), len(codes)), dtype=np.int64)
    for i, assigned in enumerate(rows):
        for code in assigned:
            if code not in column:
                raise UnknownCodeError(
                    f"segment #{i} has unknown code {code!r}; known codes: {', '.join(codes)}"
                )
            matrix[i, column[code]] = 1
    return matrix


def code_lists(matrix: np.ndarray, codes: Sequence[str]) -> list[list[str]]:
    """The inverse of :func:`label_matrix`: the codes set in each row, in code order."""
    return [[codes[j] for j in np.flatnonzero(row)] for row in np.asarray(matrix)]


def with_evidence_tag(xml: str, scheme: CodingScheme, name: str = "evidence") -> str:
    """The label config with an evidence ``<Labels>`` tag on the coded text, a label per code (shown
    as its option is, stored as the option is), placed right before that ``<Text>``; unchanged
    when it has one."""
    if scheme.evidence is not None:
        return xml
    to_name = scheme.tags[0].to_name
    text_tag = re.search(rf"<Text\b[^>]*\bname=[\"']{re.escape(to_name)}[\"']", xml)
    if text_tag is None:
        raise LabelConfigError(f'no <Text name="{to_name}"> to put the evidence <Labels> before')
    named = {  # a yes/no question's "Yes" is shown as the question's name
        option: tag.name if len(tag.options) == 1 and tag.none_option else shown
        for tag in scheme.tags
        for option, shown in zip(tag.options, tag.shown, strict=True)
    }
    labels = "".join(
        f'<Label value="{escape(shown, quote=True)}" alias="{escape(option, quote=True)}"/>'
        for option, shown in named.items()
    )
    tag = f'<Labels name="{name}" toName="{to_name}" showInline="true">{labels}</Labels>\n  '
    return xml[: text_tag.start()] + tag + xml[text_tag.start() :]
