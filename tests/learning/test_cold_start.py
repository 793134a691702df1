"""The codebook cold start's order, on vectors whose similarities are plain to see."""

import numpy as np

from backend.domain.scheme import parse_label_config
from backend.learning.cold_start import codebook_ranking
from tests.helpers import REPO

# Two codes along the axes. Pool (cosine with A, B): 0 (1.00, 0.05) and its near-duplicate 1;
# 2 (0.95, 0.32), 0.96 like 0; 3 (0.10, 0.995); 4 (0.71, 0.71); 5 (0.51, 0.86), 0.97 like 4.
DEFINITIONS = np.array([[1.0, 0.0], [0.0, 1.0]])
POOL = np.array([[1.0, 0.05], [1.0, 0.06], [0.9, 0.3], [0.1, 1.0], [0.7, 0.7], [0.5, 0.85]])


def test_codes_take_turns_and_near_duplicates_wait():
    ranking = codebook_ranking(POOL, DEFINITIONS, per_code=2)
    # A's best 0, B's best 3; A's next: 1 and 2 repeat 0 (cosine > 0.95), so 4; B's next: 5 repeats
    # 4 and nothing else is left apart, so the rest by best similarity: 1 (0.998), 2 (0.949), 5 (0.862)
    assert list(ranking.order) == [0, 3, 4, 1, 2, 5]
    assert ranking.similarity.shape == (6, 2) and np.isclose(ranking.similarity[3, 1], 1 / np.sqrt(1.01))


def test_one_per_code_then_by_similarity():
    ranking = codebook_ranking(POOL, DEFINITIONS, per_code=1, near_duplicate=1.0)
    assert list(ranking.order) == [0, 3, 1, 2, 5, 4]


def test_the_study_forms_hints_are_its_codebook():
    xml = (REPO / "label_config" / "interview_coding.xml").read_text()
    codebook = parse_label_config(xml).codebook()
    assert list(codebook) == [
        "physical_health",
        "mental_health",
        "daily_functioning",
        "health_unspecific",
        "freq_mentioned",
    ]
    assert codebook["mental_health"].startswith("Mental health. Feelings and the mind")
    assert codebook["freq_mentioned"].startswith("How often"), "a yes/no question's 'Yes' says nothing"
    plain = '<View><Text name="t" value="$text"/><Choices name="c" toName="t"><Choice value="a"/></Choices>'
    plain += "</View>"
    assert parse_label_config(plain).codebook() == {}
