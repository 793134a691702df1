"""Label Studio config and results ⇄ codes ⇄ label matrix."""

import pytest

from backend.domain.scheme import LabelConfigError, code_lists, label_matrix, parse_label_config
from backend.resources import label_config
from tests.helpers import CODES, study_form_result

TWO_TAGS = """<View>
  <Text name="answer" value="$answer"/>
  <Choices name="topic" toName="answer" choice="multiple">
    <Choice value="health"/><Choice value="school"/><Choice value="yes"/>
  </Choices>
  <Choices name="mentioned" toName="answer"><Choice value="yes"/><Choice value="no"/></Choices>
  <TextArea name="memo" toName="answer"/>
</View>"""


def test_the_study_config_gives_the_study_codes():
    """The study learned five codes: "None of these" and the frequency question's "No" are answers
    that no code applies, not codes (NONE_CHOICES matches the alias "none" and the value "No")."""
    scheme = parse_label_config(label_config("interview_coding"))
    assert scheme.codes == CODES
    assert scheme.text_field == "text"
    assert [(tag.name, tag.multiple, tag.none_option) for tag in scheme.tags] == [
        ("dimension", True, "none"),
        ("frequency", False, "freq_not_mentioned"),
    ]


def test_without_none_choices_every_option_is_a_code():
    scheme = parse_label_config(label_config("interview_coding"), none_choices=())
    assert scheme.codes == [*CODES[:4], "none", "freq_mentioned", "freq_not_mentioned"]
    assert all(tag.none_option is None for tag in scheme.tags)


def test_a_none_answer_assigns_no_code():
    scheme = parse_label_config(label_config("interview_coding"))
    assert scheme.codes_of(study_form_result([])) == []
    assert scheme.codes_of(study_form_result(["mental_health", "freq_mentioned"])) == [
        "mental_health",
        "freq_mentioned",
    ]


def test_every_none_option_is_left_out_and_none_makes_a_code_prefixed():
    """Tag a's "No" is stored as x, tag b's code x then stays plain; b has two none options."""
    xml = """<View><Text name="t" value="$t"/>
      <Choices name="a" toName="t"><Choice value="No" alias="x"/><Choice value="y"/></Choices>
      <Choices name="b" toName="t" choice="multiple">
        <Choice value="x"/><Choice value="None"/><Choice value="No"/>
      </Choices></View>"""
    scheme = parse_label_config(xml)
    assert scheme.codes == ["y", "x"]
    assert [(tag.options, tag.none_option) for tag in scheme.tags] == [(("y",), "x"), (("x",), "None")]
    assert scheme.codes_of([{"from_name": "b", "value": {"choices": ["No", "x"]}}]) == ["x"]


def test_options_shared_by_two_tags_are_prefixed():
    scheme = parse_label_config(TWO_TAGS)
    assert scheme.codes == ["health", "school", "topic:yes", "mentioned:yes"]  # "no" answers "mentioned"
    assert scheme.text_field == "answer"
    every_option = parse_label_config(TWO_TAGS, none_choices=[])
    assert every_option.codes == ["health", "school", "topic:yes", "mentioned:yes", "no"]


def test_annotation_results_map_to_codes_and_back():
    scheme = parse_label_config(TWO_TAGS)
    result = [
        {
            "from_name": "topic",
            "to_name": "answer",
            "type": "choices",
            "value": {"choices": ["health", "yes"]},
        },
        {"from_name": "mentioned", "to_name": "answer", "type": "choices", "value": {"choices": ["yes"]}},
        {"from_name": "memo", "to_name": "answer", "type": "textarea", "value": {"text": ["a note"]}},
        {"from_name": "topic", "type": "choices", "value": {"choices": ["not-an-option"]}},
    ]
    codes = scheme.codes_of(result)
    assert codes == ["health", "topic:yes", "mentioned:yes"]
    matrix = label_matrix([codes, []], scheme.codes)
    assert matrix.tolist() == [[1, 0, 1, 1], [0, 0, 0, 0]]
    assert code_lists(matrix, scheme.codes) == [codes, []]


def test_task_text_comes_from_the_bound_field():
    scheme = parse_label_config(TWO_TAGS)
    assert scheme.text_of({"id": 1, "data": {"answer": "I was ill."}}) == "I was ill."
    assert scheme.text_of({"id": 2, "data": {}}) == ""


@pytest.mark.parametrize(
    ("xml", "problem"),
    [
        ("", "empty"),
        ("<View><Text name='t' value='$t'/>", "not valid XML"),
        ("<View><Text name='t' value='$t'/></View>", "no <Choices> tag bound to a <Text>"),
        (
            "<View><Image name='i' value='$i'/>"
            "<Choices name='c' toName='i'><Choice value='a'/></Choices></View>",
            "no <Choices> tag bound to a <Text>",
        ),
        (
            "<View><Text name='t' value='$t'/>"
            "<Choices name='c' toName='t'><Choice value='None of these'/></Choices></View>",
            'has only "none of these" options \\(None of these; NONE_CHOICES\\): nothing to code',
        ),
    ],
)
def test_unusable_configs_are_refused_with_the_reason(xml, problem):
    with pytest.raises(LabelConfigError, match=problem):
        parse_label_config(xml)


def test_the_evidence_form_maps_each_code_to_its_label_and_the_plain_form_has_none():
    scheme = parse_label_config(label_config("interview_coding_evidence"))
    assert scheme.codes == CODES and scheme.evidence.name == "evidence"
    assert scheme.evidence.labels == {code: code for code in CODES}, "labels named by the codes' aliases"
    assert parse_label_config(label_config("interview_coding")).evidence is None


def test_an_evidence_tag_must_be_on_the_coded_text_and_name_codes():
    def evidence_of(labels_tag: str):
        return parse_label_config(
            TWO_TAGS.replace("<TextArea", labels_tag + "<TextArea"), none_choices=()
        ).evidence

    assert evidence_of(
        '<Labels name="why" toName="answer"><Label value="school"/><Label value="x"/></Labels>'
    )
    assert evidence_of('<Labels name="why" toName="answer"><Label value="school"/></Labels>').labels == {
        "school": "school"
    }
    assert evidence_of('<Labels name="why" toName="answer"><Label value="other"/></Labels>') is None
    other_text = (
        '<Text name="note" value="$note"/><Labels name="why" toName="note"><Label value="school"/></Labels>'
    )
    assert evidence_of(other_text) is None


def test_an_evidence_tag_is_added_on_request_before_the_coded_text():
    from backend.domain.scheme import with_evidence_tag

    plain = label_config("interview_coding")
    added = with_evidence_tag(plain, parse_label_config(plain))
    scheme = parse_label_config(added)
    assert scheme.codes == CODES and scheme.evidence.labels == {code: code for code in CODES}
    assert added.index('<Labels name="evidence"') < added.index('<Text name="text"')
    assert '<Label value="Physical health" alias="physical_health"/>' in added, (
        "shown as coders see the option"
    )
    assert '<Label value="frequency" alias="freq_mentioned"/>' in added, "a yes/no question by its name"
    shown_values = added.replace(' alias="physical_health"/>', "/>", 1)
    assert parse_label_config(shown_values).evidence.labels["physical_health"] == "Physical health"
    assert with_evidence_tag(added, scheme) == added, "a form with one keeps it"
