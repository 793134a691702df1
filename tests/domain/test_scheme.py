"""Label Studio config and results ⇄ codes ⇄ label matrix."""

import pytest

from backend.domain.scheme import LabelConfigError, code_lists, label_matrix, parse_label_config
from backend.resources import label_config

TWO_TAGS = """<View>
  <Text name="answer" value="$answer"/>
  <Choices name="topic" toName="answer" choice="multiple">
    <Choice value="health"/><Choice value="school"/><Choice value="yes"/>
  </Choices>
  <Choices name="mentioned" toName="answer"><Choice value="yes"/><Choice value="no"/></Choices>
  <TextArea name="memo" toName="answer"/>
</View>"""


def test_the_study_config_gives_the_study_codes():
    scheme = parse_label_config(label_config("interview_coding"))
    assert scheme.codes[:4] == ["physical_health", "mental_health", "daily_functioning", "health_unspecific"]
    assert "freq_mentioned" in scheme.codes
    assert scheme.text_field == "text"
    assert [(tag.name, tag.multiple) for tag in scheme.tags] == [("dimension", True), ("frequency", False)]


def test_options_shared_by_two_tags_are_prefixed():
    scheme = parse_label_config(TWO_TAGS)
    assert scheme.codes == ["health", "school", "topic:yes", "mentioned:yes", "no"]
    assert scheme.text_field == "answer"


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
    assert matrix.tolist() == [[1, 0, 1, 1, 0], [0, 0, 0, 0, 0]]
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
    ],
)
def test_unusable_configs_are_refused_with_the_reason(xml, problem):
    with pytest.raises(LabelConfigError, match=problem):
        parse_label_config(xml)
